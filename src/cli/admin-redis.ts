/**
 * The Redis connection of the admin commands that act on one user (`tessera sessions`, `tessera
 * factors`): read from the environment or .env, failing fast rather than retrying, closed after,
 * and every Redis failure turned into exit 3 with one line naming what went wrong.
 */
import { createRedis, type RedisClient } from '../shared/redis.js'
import { StoreUnavailableError } from '../shared/errors.js'
import { UnacknowledgedWriteError } from '../shared/replication.js'
import { parseRedisConnection, parseWaitReplicas } from '../idp/config.js'
import { redactUrl } from './check-config.js'
import { environment, EXIT } from './environment.js'

/** Runs `action` with a client and REDIS_WAIT_REPLICAS; resolves to the exit code. */
export async function withAdminRedis(
  command: string, err: (s: string) => void,
  action: (redis: RedisClient, waitReplicas: number) => Promise<number>,
): Promise<number> {
  const problems: string[] = []
  const env = environment()
  const conn = parseRedisConnection(env, problems)
  const waitReplicas = parseWaitReplicas(env, problems)
  if (problems.length > 0) { err(`tessera ${command}: ${problems.join('; ')}\n`); return EXIT.usage }
  const redis = createRedis(conn, { enableOfflineQueue: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    return await action(redis, waitReplicas)
  } catch (e) {
    err(`tessera ${command}: ${unacknowledged(e)
      ? `ending the sessions was not acknowledged by REDIS_WAIT_REPLICAS=${waitReplicas} replicas; run it again once they are back`
      : `Redis at ${redactUrl(conn.url ?? '')} does not answer`}\n`)
    return EXIT.redis
  } finally {
    redis.disconnect()
  }
}

/** Whether the writes were made but too few replicas acknowledged them (Replication.confirm). */
function unacknowledged(e: unknown): boolean {
  return e instanceof StoreUnavailableError && e.cause instanceof UnacknowledgedWriteError
}
