/** `tessera sessions list|revoke <user>`: every session of a user, for an admin who must cut one off now. */
import { UserIndex } from '../shared/user-index.js'
import { withAdminRedis } from './admin-redis.js'
import { EXIT } from './environment.js'
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
  return withAdminRedis('sessions', user, err, async (redis, waitReplicas) => {
    const store = new UserIndex(redis, { waitReplicas })
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
  })
}

/** App origins come from Redis, which apps can write: no control character reaches the admin's terminal. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?')
}
