/** Synchronisation keys for tests: a fresh SYNC_KEYS entry, and the keyring of one that must be valid. */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'

/** `id:<32 random bytes, base64url>`, one entry of SYNC_KEYS. */
export const newKey = (id: string): string => `${id}:${randomBytes(32).toString('base64url')}`

/** The keyring of SYNC_KEYS `raw`, asserting it parses with no problem. */
export function keyringOf(raw: string): Keyring {
  const problems: string[] = []
  const ring = parseSyncKeys(raw, 'SYNC_KEYS', problems)
  assert.deepStrictEqual(problems, [])
  assert.ok(ring)
  return ring
}
