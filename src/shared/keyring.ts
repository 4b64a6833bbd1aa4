/** The sync keys that seal hand-over tokens: `id:key` pairs, the first mints, all open (rotation). */
import { createSecretKey, type KeyObject } from 'node:crypto'
import { listEntries } from './list-entries.js'

export interface SyncKey {
  readonly id: string
  /** A KeyObject, not a Buffer: node:crypto skips re-importing the key on every token (and it never prints). */
  readonly key: KeyObject
}

export interface Keyring {
  /** The key that mints new tokens. */
  readonly current: SyncKey
  readonly byId: ReadonlyMap<string, SyncKey>
}

const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/
const KEY_B64URL = /^[A-Za-z0-9_-]{43}$/ // 32 bytes, unpadded

/**
 * Parses `id:key,id:key`. Returns the keyring, or pushes one message per problem (naming `name[i]`)
 * onto `problems` and returns undefined. The key material never appears in a message.
 */
export function parseSyncKeys(raw: string, name: string, problems: string[]): Keyring | undefined {
  const entries = listEntries(raw)
  const before = problems.length
  if (entries.length === 0) problems.push(`${name}: at least one id:key pair is required`)
  const keys: SyncKey[] = []
  // Every id written counts, a bad key's too: a repeated id is reported whatever else is wrong.
  const ids = new Set<string>()
  for (const { entry, index: i } of entries) {
    const colon = entry.indexOf(':')
    const id = colon < 0 ? '' : entry.slice(0, colon)
    const material = colon < 0 ? entry : entry.slice(colon + 1)
    if (!KEY_ID.test(id)) {
      problems.push(`${name}[${i}]: must be id:key with an id of 1-32 letters, digits, '-' or '_'`)
      continue
    }
    const repeated = ids.has(id)
    ids.add(id)
    if (repeated) problems.push(`${name}[${i}]: key id ${id} appears twice`)
    if (!KEY_B64URL.test(material)) {
      problems.push(`${name}[${i}] (id ${id}): key must be 32 random bytes in base64url (43 characters, no padding)`)
      continue
    }
    if (!repeated) keys.push({ id, key: createSecretKey(Buffer.from(material, 'base64url')) })
  }
  if (problems.length > before || keys[0] === undefined) return undefined
  return { current: keys[0], byId: new Map(keys.map((k) => [k.id, k])) }
}
