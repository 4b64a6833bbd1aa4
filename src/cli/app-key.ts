/** `tessera app-key <origin>`: prints the keys one app holds (its `appKeys` plugin option). */
import { formatAppKeys } from '../shared/app-keys.js'
import { parseSyncKeys } from '../shared/keyring.js'
import { parseOrigin } from '../shared/origin.js'
import { environment, EXIT } from './environment.js'

export const HELP = `Usage: tessera app-key <origin>

Prints the appKeys value for the app at <origin> (e.g. https://shop.example.com), derived from the
IdP's SYNC_KEYS in the environment or .env: one entry per IdP key id, newest first. The app opens
tokens for its own origin with it and verifies the identities the IdP signs; it cannot mint tokens
for any other app. Give it to that app only (as a secret), never SYNC_KEYS itself.
<origin> must be in KNOWN_REMOTE_HOSTS. Run it again after every change of SYNC_KEYS.

Exit codes: 0 printed; 1 <origin> is not in KNOWN_REMOTE_HOSTS; 2 usage error or invalid SYNC_KEYS.
`

export function appKey(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  const [target] = args
  if (target === undefined || args.length !== 1) { err(HELP); return EXIT.usage }
  const env = environment()
  const problems: string[] = []
  const keyring = parseSyncKeys(env.SYNC_KEYS ?? '', 'SYNC_KEYS', problems)
  const production = env.NODE_ENV === 'production'
  const origin = parseOrigin(target, 'origin', production, problems)
  if (keyring === undefined || origin === undefined) {
    err(`tessera app-key: ${problems.join('; ')}\n`)
    return EXIT.usage
  }
  const known = (env.KNOWN_REMOTE_HOSTS ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
    .map((o) => parseOrigin(o, 'KNOWN_REMOTE_HOSTS', production, []))
  if (!known.includes(origin)) {
    err(`tessera app-key: ${origin} is not in KNOWN_REMOTE_HOSTS, so the IdP would never hand a user over to it\n`)
    return EXIT.problem
  }
  out(`${formatAppKeys(keyring, origin)}\n`)
  return EXIT.ok
}
