/** Creates the ioredis client both sides use, tuned to fail fast rather than queue during an outage. */
import { Redis, type RedisOptions } from 'ioredis'

/**
 * Commands fail at once while disconnected (no offline queue), so a request during a Redis outage
 * gets a 503 in milliseconds instead of hanging, and the client keeps reconnecting by itself.
 */
export const REDIS_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 2000,
  connectTimeout: 2000,
  retryStrategy: (times) => Math.min(50 * times, 1000),
}

export function createRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { ...REDIS_OPTIONS, ...options })
}

/** Resolves once the client is ready, or after `timeoutMs` (the caller carries on, answering 503). */
export async function waitForRedis(redis: Redis, timeoutMs = 2000): Promise<boolean> {
  if (redis.status === 'ready') return true
  return new Promise((resolve) => {
    const timer = setTimeout(() => { redis.off('ready', onReady); resolve(false) }, timeoutMs)
    const onReady = (): void => { clearTimeout(timer); resolve(true) }
    redis.once('ready', onReady)
  })
}
