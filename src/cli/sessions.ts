/** `tessera sessions list|revoke <user>`: every session of a user, for an admin who must cut one off now. */
import { createRedis } from '../shared/redis.js'
import { UserIndex } from '../shared/user-index.js'
import { parseRedisConnection, parseWaitReplicas } from '../idp/config.js'
import { StoreUnavailableError } from '../shared/errors.js'
import { redactUrl } from './check-config.js'
import { environment, EXIT } from './environment.js'
import { deviceName } from '../idp/device-name.js'

export const HELP = `Usage: tessera sessions list <user>
       tessera sessions revoke <user>

list    prints the user's live sessions (a fingerprint, created, last seen, idle expiry, absolute
        expiry, the device from its User-Agent and the apps that hold a handle)
revoke  ends every session of the user at once, in the IdP and every app

Uses REDIS_URL (or REDIS_SENTINELS / REDIS_CLUSTER_NODES) from the environment or .env, and
REDIS_WAIT_REPLICAS: a revocation is then confirmed by that many replicas, as a logout is.
Exit codes: 0 done; 1 nothing found (list); 2 usage error; 3 Redis does not answer.
`

export async function sessions(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [action, user] = args
  if ((action !== 'list' && action !== 'revoke') || user === undefined || args.length !== 2) { err(HELP); return EXIT.usage }
  const problems: string[] = []
  const env = environment()
  const conn = parseRedisConnection(env, problems)
  const waitReplicas = parseWaitReplicas(env, problems)
  if (problems.length > 0) { err(`tessera sessions: ${problems.join('; ')}\n`); return EXIT.usage }
  const url = conn.url ?? ''
  const redis = createRedis(conn, { enableOfflineQueue: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  const store = new UserIndex(redis, { waitReplicas })
  try {
    if (action === 'revoke') {
      const ended = await store.revokeAll(user)
      out(`revoked ${ended} session${ended === 1 ? '' : 's'} of ${user}\n`)
      return EXIT.ok
    }
    const list = await store.list(user)
    if (list.length === 0) { out(`no live sessions for ${user}\n`); return EXIT.problem }
    out('session       created                   last seen                 idle expiry               absolute expiry           device (apps)\n')
    for (const s of list) {
      const times = [s.createdAt, s.lastSeenAt, s.idleExpiresAt, s.expiresAt].map((t) => new Date(t).toISOString()).join('  ')
      const apps = s.apps.length === 0 ? '' : ` (${s.apps.join(', ')})`
      out(`${s.id}  ${times}  ${printable(`${deviceName(s.userAgent)}${apps}`)}\n`)
    }
    return EXIT.ok
  } catch (e) {
    err(`tessera sessions: ${unacknowledged(e) ? `the revocation was not acknowledged by REDIS_WAIT_REPLICAS=${waitReplicas} replicas; run it again once they are back` : `Redis at ${redactUrl(url)} does not answer`}\n`)
    return EXIT.redis
  } finally {
    redis.disconnect()
  }
}

/** Whether the writes were made but too few replicas acknowledged them (Replication.confirm). */
export function unacknowledged(e: unknown): boolean {
  return e instanceof StoreUnavailableError && e.cause instanceof Error && e.cause.message.startsWith('WAIT:')
}

/** App origins come from Redis, which apps can write: no control character reaches the admin's terminal. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?')
}
