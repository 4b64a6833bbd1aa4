/** Fastify glue both sides share: hold a fresh process back from listening until Redis answers. */
import type { FastifyInstance } from 'fastify'
import { waitForRedis, type RedisClient } from './redis.js'

/**
 * Holds `app` back from listening until `redis` answers, for at most 2 s, then lets it start anyway
 * (answering 503 until Redis does): in a rolling restart the first requests reach a fresh process at
 * once, and without a connection yet they would get 503s. `logPrefix` tags the one warning.
 */
export function readyWhenRedisIs(app: FastifyInstance, redis: RedisClient, logPrefix = ''): void {
  app.addHook('onReady', async () => {
    if (!(await waitForRedis(redis))) app.log.warn(`${logPrefix}redis is not reachable yet: answering 503 until it is`)
  })
}
