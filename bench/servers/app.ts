/** Bench server: a remote app with `tessera/remote` (redis URL: the plugin connects), pino at 'warn'. */
import Fastify from 'fastify'
import tesseraRemote, { tesseraLoggerOptions } from '../../src/remote/index.js'
import { childConfig, runChild } from '../lib/child.js'
import { page } from '../lib/common.js'
import { experimentClient, type TesseraChildConfig } from '../lib/tessera-child.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'

interface AppChildConfig extends TesseraChildConfig {
  idpUrl: string
}

runChild(async () => {
  const c = childConfig<AppChildConfig>()
  const origin = `http://${c.host}:${c.port}`
  const app = Fastify({ logger: tesseraLoggerOptions(c.logLevel) })
  const experiment = experimentClient(c, c.redisUrl)
  experiment.closeWith(app)
  await app.register(tesseraRemote, {
    idpUrl: c.idpUrl,
    origin,
    // The app holds only its own keys, as `npx tessera app-key <origin>` prints them.
    appKeys: formatAppKeys(parseSyncKeys(c.syncKeys, 'SYNC_KEYS', []) as Keyring, origin),
    redis: experiment.client ?? c.redisUrl, // a URL (the plugin connects), or the experiment's client
    sessionSecret: c.sessionSecret,
  })
  app.get('/private', async (req, reply) => {
    const user = req.session.user
    if (user === undefined) throw new Error('unreachable: the plugin guards this path')
    return reply.type('text/html; charset=utf-8').send(page(user.username))
  })
  await app.listen({ host: c.host, port: c.port })
  return { close: () => app.close() }
})
