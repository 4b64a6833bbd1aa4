/** `tessera sessions list|revoke <user>`: every session of a user, for an admin who must cut one off now. */
import { createRedis } from '../shared/redis.js'
import { UserIndex } from '../shared/user-index.js'
import { parseRedisConnection } from '../idp/config.js'
import { redactUrl } from './check-config.js'
import { environment, EXIT } from './environment.js'

export const HELP = `Usage: tessera sessions list <user>
       tessera sessions revoke <user>

list    prints the user's live sessions (a fingerprint, created, idle expiry, absolute expiry)
revoke  ends every session of the user at once, in the IdP and every app

Uses REDIS_URL (or REDIS_SENTINELS / REDIS_CLUSTER_NODES) from the environment or .env.
Exit codes: 0 done; 1 nothing found (list); 2 usage error; 3 Redis does not answer.
`

export async function sessions(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [action, user] = args
  if ((action !== 'list' && action !== 'revoke') || user === undefined || args.length !== 2) { err(HELP); return EXIT.usage }
  const problems: string[] = []
  const conn = parseRedisConnection(environment(), problems)
  if (problems.length > 0) { err(`tessera sessions: ${problems.join('; ')}\n`); return EXIT.usage }
  const url = conn.url ?? ''
  const redis = createRedis(conn, { enableOfflineQueue: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  const store = new UserIndex(redis)
  try {
    if (action === 'revoke') {
      const ended = await store.revokeAll(user)
      out(`revoked ${ended} session${ended === 1 ? '' : 's'} of ${user}\n`)
      return EXIT.ok
    }
    const list = await store.list(user)
    if (list.length === 0) { out(`no live sessions for ${user}\n`); return EXIT.problem }
    out('session       created                   idle expiry               absolute expiry\n')
    for (const s of list) {
      out(`${s.id}  ${new Date(s.createdAt).toISOString()}  ${new Date(s.idleExpiresAt).toISOString()}  ${new Date(s.expiresAt).toISOString()}\n`)
    }
    return EXIT.ok
  } catch {
    err(`tessera sessions: Redis at ${redactUrl(url)} does not answer\n`)
    return EXIT.redis
  } finally {
    redis.disconnect()
  }
}
