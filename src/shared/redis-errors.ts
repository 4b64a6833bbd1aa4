/**
 * ioredis's connection errors, logged so that an outage shows without flooding the log: ioredis
 * retries every few hundred milliseconds and reports each failure, which for a Redis down an hour
 * would be thousands of identical lines. The first error of an outage is logged at once, then at most
 * one line per interval, counting the errors left out since; a reconnection ends the outage.
 */
import type { RedisClient } from './redis.js'

const EVERY_MS = 30_000

export function logRedisErrors(redis: RedisClient, warn: (obj: object, msg: string) => void, msg: string, everyMs = EVERY_MS, clock: () => number = Date.now): void {
  let loggedAt = -Infinity
  let left = 0
  redis.on('error', (err: Error) => {
    const now = clock()
    if (now - loggedAt < everyMs) { left++; return }
    warn({ err: { message: err.message }, ...(left > 0 ? { errorsNotLogged: left } : {}) }, msg)
    loggedAt = now
    left = 0
  })
  redis.on('ready', () => { loggedAt = -Infinity; left = 0 })
}
