/** Bench server: a remote app with `tessera/remote` (redis URL: the plugin connects), pino at 'warn'. */
import Fastify from 'fastify'
import tesseraRemote, { tesseraLoggerOptions } from '../../src/remote/index.js'
import { createRedis } from '../../src/shared/redis.js'
import { childConfig, runChild } from '../lib/child.js'
import { page, type ChildConfig } from '../lib/common.js'

interface AppChildConfig extends ChildConfig {
  idpUrl: string
  syncKeys: string
  sessionSecret: string
  logLevel: string
  /** Experiment (BENCH_REDIS_AUTOPIPELINING=1): pass an ioredis client with enableAutoPipelining. */
  autoPipelining: boolean
}

runChild(async () => {
  const c = childConfig<AppChildConfig>()
  const origin = `http://${c.host}:${c.port}`
  const app = Fastify({ logger: tesseraLoggerOptions(c.logLevel) })
  const redis = c.autoPipelining ? createRedis(c.redisUrl, { enableAutoPipelining: true }) : undefined
  if (redis !== undefined) app.addHook('onClose', async () => { redis.disconnect() })
  await app.register(tesseraRemote, {
    idpUrl: c.idpUrl,
    origin,
    syncKeys: c.syncKeys,
    redis: redis ?? c.redisUrl, // a URL (the plugin connects), or the experiment's client
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
