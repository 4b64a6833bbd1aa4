/** What the Tessera IdP and app children share: their configuration and the auto-pipelining experiment. */
import type { FastifyInstance } from 'fastify'
import { createRedis, type RedisConnection } from '../../src/shared/redis.js'
import type { ChildConfig } from './common.js'

export interface TesseraChildConfig extends ChildConfig {
  syncKeys: string
  sessionSecret: string
  logLevel: string
  /** Experiment (BENCH_REDIS_AUTOPIPELINING=1): pass an ioredis client with enableAutoPipelining. */
  autoPipelining: boolean
}

type Client = ReturnType<typeof createRedis>

/**
 * With the experiment on, an ioredis client with enableAutoPipelining on `target`, disconnected when
 * the server closes (call `closeWith` once the server exists); otherwise undefined, and the server
 * connects by itself as configured.
 */
export function experimentClient(c: TesseraChildConfig, target: string | RedisConnection): { client: Client | undefined; closeWith(app: FastifyInstance): void } {
  const client = c.autoPipelining ? createRedis(target, { enableAutoPipelining: true }) : undefined
  return {
    client,
    closeWith: (app) => { if (client !== undefined) app.addHook('onClose', async () => { client.disconnect() }) },
  }
}
