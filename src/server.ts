/** The IdP process: read the environment (and `.env`), build, listen, stop within seconds on SIGTERM/SIGINT (shared/shutdown.ts). */
import type { IdpConfig } from './idp/config.js'
import { ConfigError } from './shared/errors.js'
import { exitOnSignalsWhileLoading, stopOnSignals } from './shared/shutdown.js'

exitOnSignalsWhileLoading()
// Loaded after the line above: Fastify, Ajv and the rest take a few hundred ms to load.
const { buildIdp } = await import('./idp/app.js')
const { loadConfig } = await import('./idp/config.js')

let config: IdpConfig
try {
  config = loadConfig(process.env, { dotenv: true })
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  // One line naming every bad variable; no stack trace, no secret values.
  process.stderr.write(`tessera: ${err.message}\n`)
  process.exit(1)
}

const app = buildIdp(config)
stopOnSignals(app)
try {
  await app.listen({ port: config.port, host: config.host })
} catch (err) {
  process.stderr.write(`tessera: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}\n`)
  process.exit(1)
}

// Last resort (ASVS V16.5.4): log what escaped every handler, then exit so the supervisor restarts
// a clean process rather than one in an unknown state.
process.on('uncaughtException', (err) => {
  app.log.fatal({ err }, 'uncaught exception')
  process.exit(1)
})
process.on('unhandledRejection', (reason) => {
  app.log.fatal({ err: reason }, 'unhandled rejection')
  process.exit(1)
})
