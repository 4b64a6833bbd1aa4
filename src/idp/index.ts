export { buildIdp, type BuildIdpOptions } from './app.js'
export { loadConfig, type IdpConfig } from './config.js'
export { AllowList, type CallbackCheck } from './allow-list.js'
