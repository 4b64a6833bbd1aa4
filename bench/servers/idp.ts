/** Bench server: the Tessera IdP as `npm start` runs it (own Redis connection, pino logger at 'warn'). */
import { buildIdp } from '../../src/idp/app.js'
import { loadConfig } from '../../src/idp/config.js'
import { childConfig, runChild } from '../lib/child.js'
import { experimentClient, type TesseraChildConfig } from '../lib/tessera-child.js'

interface IdpChildConfig extends TesseraChildConfig {
  knownRemoteHosts: string
  usersFile: string
  /** FACTOR_KEYS, so TOTP users can sign in with a code (the TOTP step, measurement 5). */
  factorKeys: string
}

runChild(async () => {
  const c = childConfig<IdpChildConfig>()
  const config = loadConfig({
    REDIS_URL: c.redisUrl,
    KNOWN_REMOTE_HOSTS: c.knownRemoteHosts,
    SYNC_KEYS: c.syncKeys,
    SESSION_SECRET: c.sessionSecret,
    USERS_FILE: c.usersFile,
    FACTOR_KEYS: c.factorKeys,
    PUBLIC_URL: `http://${c.host}:${c.port}`,
    PORT: String(c.port),
    HOST: c.host,
    LOG_LEVEL: c.logLevel,
    // Every virtual user signs in once as alice from 127.0.0.1 before the run (~12 sign-ins in a
    // second); the default regulation (3 attempts in 2 minutes) would ban the rest. Not timed.
    LOGIN_MAX_RETRIES: '100',
  })
  // Tessera's own logger options, at LOG_LEVEL; every check and error page on.
  const experiment = experimentClient(c, config.redis)
  const app = buildIdp(config, experiment.client === undefined ? {} : { redis: experiment.client })
  experiment.closeWith(app)
  await app.listen({ host: config.host, port: config.port })
  return { close: () => app.close() }
})
