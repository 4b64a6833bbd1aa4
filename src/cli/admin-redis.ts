/**
 * The Redis connection of the admin commands that act on one user (`tessera sessions`, `tessera
 * factors`): read from the environment or .env, failing fast rather than retrying, closed after,
 * and every Redis failure turned into exit 3 with one line naming what went wrong.
 */
import { createRedis, type RedisClient } from '../shared/redis.js'
import { StoreUnavailableError } from '../shared/errors.js'
import { UnacknowledgedWriteError } from '../shared/replication.js'
import { parseRedisConnection, parseWaitReplicas } from '../idp/config.js'
import { describeRedis, reasonOf, useDatabase } from './redis-target.js'
import { readYamlFile } from '../idp/yaml-file.js'
import { environment, EXIT } from './environment.js'

/** Runs `action` on `user` with a client and REDIS_WAIT_REPLICAS; resolves to the exit code. */
export async function withAdminRedis(
  command: string, user: string, err: (s: string) => void,
  action: (redis: RedisClient, waitReplicas: number) => Promise<number>,
): Promise<number> {
  const problems: string[] = []
  const env = environment()
  noteUnknownUser(command, user, env.USERS_FILE, err)
  const conn = parseRedisConnection(env, problems)
  const waitReplicas = parseWaitReplicas(env, problems)
  if (problems.length > 0) { err(`tessera ${command}: ${problems.join('; ')}\n`); return EXIT.usage }
  const where = describeRedis(conn)
  // These commands delete: an operator in the wrong directory must see that no setting was found.
  if (env.REDIS_URL === undefined && env.REDIS_SENTINELS === undefined && env.REDIS_CLUSTER_NODES === undefined) {
    err(`tessera ${command}: no REDIS_URL in the environment or ./.env; using ${where}\n`)
  }
  const redis = createRedis(conn, { enableOfflineQueue: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await useDatabase(redis, conn)
    return await action(redis, waitReplicas)
  } catch (e) {
    err(`tessera ${command}: ${unacknowledged(e)
      ? `ending the sessions was not acknowledged by REDIS_WAIT_REPLICAS=${waitReplicas} replicas (what was deleted stays deleted on the primary); run it again once they are back`
      : `Redis at ${where} ${reasonOf(e)}`}\n`)
    return EXIT.redis
  } finally {
    redis.disconnect()
  }
}

/** Whether the writes were made but too few replicas acknowledged them (Replication.confirm). */
function unacknowledged(e: unknown): boolean {
  return e instanceof StoreUnavailableError && e.cause instanceof UnacknowledgedWriteError
}

/**
 * A note on stderr when USERS_FILE is set and does not list `user`: user names are case-sensitive,
 * and `revoke Alice` would end none of alice's sessions while reporting success. Only a note: the
 * user may have been removed from the file on purpose, and their sessions still need ending.
 */
function noteUnknownUser(command: string, user: string, path: string | undefined, err: (s: string) => void): void {
  if (path === undefined || path === '') return
  const read = readYamlFile(path)
  if (!('doc' in read)) return // the IdP reports an unreadable file; this command does not need it
  const users = (read.doc as { users?: unknown } | null)?.users
  if (users === null || typeof users !== 'object' || Object.hasOwn(users, user)) return
  err(`tessera ${command}: note: "${user}" is not a user in USERS_FILE (${path}); names are case-sensitive\n`)
}
