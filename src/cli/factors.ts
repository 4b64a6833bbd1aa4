/** `tessera factors list|reset <user>`: a user's second factors, for an admin helping someone who lost theirs. */
import { UserIndex } from '../shared/user-index.js'
import { FactorStore } from '../idp/factors/factor-store.js'
import { PasskeyStore } from '../idp/factors/passkey-store.js'
import { withAdminRedis } from './admin-redis.js'
import { EXIT } from './environment.js'

export const HELP = `Usage: tessera factors list <user>
       tessera factors reset <user>

list    prints what the user has enrolled: authenticator app (since when), passkeys, recovery codes left
reset   removes every second factor of the user (authenticator app, recovery codes, passkeys) and
        ends every session of the user, in the IdP and every app; the user signs in again with the
        password and, if policy requires one, sets up a new factor right then

Uses REDIS_URL (or REDIS_SENTINELS / REDIS_CLUSTER_NODES) from the environment or .env, and
REDIS_WAIT_REPLICAS: ending the sessions is then confirmed by that many replicas.
Exit codes: 0 done; 1 nothing enrolled (list); 2 usage error; 3 Redis does not answer.
`

export async function factors(args: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [action, user] = args
  if ((action !== 'list' && action !== 'reset') || user === undefined || args.length !== 2) { err(HELP); return EXIT.usage }
  return withAdminRedis('factors', user, err, async (redis, waitReplicas) => {
    const store = new FactorStore(redis)
    if (action === 'reset') {
      const passkeys = new PasskeyStore(redis)
      const ids = (await passkeys.list(user)).map((p) => p.id)
      const had = await store.reset(user)
      await passkeys.releaseOwners(user, ids)
      const ended = await new UserIndex(redis, { waitReplicas }).revokeAll(user)
      out(`${had ? `removed every second factor of ${user}` : `${user} had no second factor enrolled`}; ended ${ended} session${ended === 1 ? '' : 's'}\n`)
      return EXIT.ok
    }
    const enrolled = await store.enrolled(user)
    const totp = enrolled.totp ? await store.totp(user) : undefined
    if (!enrolled.totp && enrolled.passkeys === 0 && enrolled.recoveryCodes === 0) { out(`no second factor enrolled for ${user}\n`); return EXIT.problem }
    out(`authenticator app  ${enrolled.totp ? `on since ${new Date(totp?.enrolledAt ?? 0).toISOString()}` : 'off'}\n`)
    out(`passkeys           ${enrolled.passkeys}\n`)
    out(`recovery codes     ${enrolled.recoveryCodes} unused\n`)
    return EXIT.ok
  })
}
