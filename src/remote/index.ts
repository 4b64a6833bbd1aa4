import tesseraRemote from './plugin.js'

export default tesseraRemote
export { tesseraRemote }
export type { TesseraRemoteOptions, TesseraCookieOptions } from './options.js'
export { TesseraSession, type TesseraUser } from './session.js'
export type { SessionAuth as TesseraAuth } from '../shared/session.js'
export { TesseraError } from '../shared/errors.js'
export { loggerOptions as tesseraLoggerOptions } from '../shared/logger.js'
export { tesseraGate, buildGate, type TesseraGateOptions, type TesseraGateHost } from './gate.js'
