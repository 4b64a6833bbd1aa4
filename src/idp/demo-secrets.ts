/**
 * What this repository publishes for demos, in one place: the secrets in .env.example and
 * docker-compose.yml and the password hashes in examples/users.yml (which the image ships). Fine for a
 * demo; production refuses each of them (config.ts, users.ts). test/idp/config.test.ts reads those
 * files and fails when one of them holds a value this list lacks. Also the placeholders of
 * deploy/kubernetes/secret.example.yaml and docs/deploy.md, refused everywhere.
 */

/** SESSION_SECRET, SYNC_KEYS' key and FACTOR_KEYS' key of .env.example and docker-compose.yml. */
export const DEMO_SECRETS: readonly string[] = Object.freeze([
  'demo-only-session-secret-change-me-0123456789',
  'ZGVtby1vbmx5LWtleS1kby1ub3QtdXNlLWluLXByb2Q',
  'ZGVtby1vbmx5LWZhY3Rvci1rZXktbm90LWluLXByb2Q',
])

/** examples/users.yml's hashes (alice's password is in that file's comment). */
export const DEMO_PASSWORD_HASHES: readonly string[] = Object.freeze([
  '$argon2id$v=19$m=19456,t=2,p=1$5m9zi95Bu8v+MXJP2f78UQ$dNtzaeoq9vsoJZhrYZQz3gLlmyFQOC/lNA2agOxNqhM',
])

/**
 * Whether `phc` is one of the published hashes, compared by the digest's bytes rather than the text:
 * base64 leaves spare bits in its last character, so one digest has several spellings argon2 accepts
 * alike. An equal digest is the same hash (a different password, salt or cost would change it), and
 * no password is hashed to find out.
 */
export function isDemoPasswordHash(phc: string): boolean {
  const digest = digestOf(phc)
  return digest.length > 0 && DEMO_DIGESTS.some((d) => d.equals(digest))
}

function digestOf(phc: string): Buffer {
  return Buffer.from(phc.slice(phc.lastIndexOf('$') + 1), 'base64')
}

const DEMO_DIGESTS = DEMO_PASSWORD_HASHES.map(digestOf)

/**
 * Whether a secret is still the placeholder deploy/kubernetes/secret.example.yaml or docs/deploy.md
 * shows (`replace-me…`, or the `…` of `--from-literal=REDIS_PASSWORD='…'`). Refused in every
 * environment: no demo runs on them, and a copied manifest must not start on a guessable password.
 */
export function isPlaceholder(value: string): boolean {
  const v = value.trim()
  return /^replace-me/i.test(v) || v === '…' || v === '...'
}
