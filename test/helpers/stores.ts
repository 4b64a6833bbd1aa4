/** The store modules as the IdP makes them, for tests that talk to them directly (real Redis). */
import type { RedisClient } from '../../src/shared/redis.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'
import { identityKeysOf } from '../../src/shared/app-keys.js'
import { IdentityVerifier } from '../../src/shared/identity.js'
import { Sessions } from '../../src/shared/sessions.js'
import { Tokens } from '../../src/shared/tokens.js'
import { newKey } from './stack.js'

/** A password sign-in now, as the IdP records it. */
export const PWD = [{ method: 'pwd' as const, at: Date.now() }]

export function storesFor(redis: RedisClient, opts: { keyring?: Keyring; waitReplicas?: number; notice?: (message: string) => void } = {}) {
  const keyring = opts.keyring ?? (parseSyncKeys(newKey('k1'), 'SYNC_KEYS', []) as Keyring)
  const { signer, publicKeyFor } = identityKeysOf(keyring)
  const options = { identity: new IdentityVerifier(publicKeyFor), waitReplicas: opts.waitReplicas ?? 0, ...(opts.notice === undefined ? {} : { notice: opts.notice }) }
  return { keyring, signer, sessions: new Sessions(redis, options), tokens: new Tokens(redis, options) }
}
