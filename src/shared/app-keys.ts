/**
 * Per-app keys. The IdP holds the keyring (`SYNC_KEYS`); from each of its keys it derives, with
 * HKDF-SHA256, one AES-256 token key per app origin and one Ed25519 key pair that signs identities.
 * An app holds only its own token key and the IdP's public identity key (its "app key", printed by
 * `tessera app-key <origin>`): it can open tokens for its own origin and verify who a session
 * belongs to, but neither mint a token for another app nor write an identity any app accepts.
 *
 * Derived rather than listed per origin: the IdP keeps one keyring, adding an app is adding its
 * origin to KNOWN_REMOTE_HOSTS, and a rotation of SYNC_KEYS rotates every app's key the same way.
 *
 * App key format (one per IdP key id, comma-separated, newest first):
 *   <kid>.<token key, 32 bytes b64url>.<Ed25519 public key, 32 bytes b64url>
 */
import { createPrivateKey, createPublicKey, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto'
import type { Keyring, SyncKey } from './keyring.js'
import { listEntries } from './list-entries.js'

const SALT = 'tessera'
// A PKCS#8 wrapper for a raw 32-byte Ed25519 seed (RFC 8410): node:crypto imports seeds this way.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
// SubjectPublicKeyInfo prefix of a raw Ed25519 public key.
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

/** What an app holds for one IdP key id. */
export interface AppKey {
  readonly id: string
  /** Opens tokens minted for this app's origin. */
  readonly tokenKey: KeyObject
  /** Verifies identities the IdP signed. */
  readonly identityKey: KeyObject
}

export interface AppKeyring {
  readonly byId: ReadonlyMap<string, AppKey>
}

/** The identity-signing key pair the IdP derives from one of its keys. */
export interface IdentitySigningKey {
  readonly id: string
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
}

function derive(master: KeyObject, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, SALT, info, 32))
}

/** The key that seals tokens for `origin` (the IdP mints with it, the app opens with it). */
export function tokenKeyFor(key: SyncKey, origin: string): KeyObject {
  return createSecretKey(derive(key.key, `token|${origin}`))
}

export function identityKeyFor(key: SyncKey): IdentitySigningKey {
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, derive(key.key, 'identity')]), format: 'der', type: 'pkcs8' })
  return { id: key.id, privateKey, publicKey: createPublicKey(privateKey) }
}

// Derived token keys, per key and origin: HKDF costs a few µs, and the allow-list is small.
const MINTING_CACHE_MAX = 1024
const mintingKeys = new WeakMap<KeyObject, Map<string, { readonly id: string; readonly key: KeyObject }>>()

/** The key id and key that seal a token for `origin` now: the keyring's current key, derived for it. */
export function mintingKeyFor(keyring: Keyring, origin: string): { readonly id: string; readonly key: KeyObject } {
  const master = keyring.current
  let perOrigin = mintingKeys.get(master.key)
  if (perOrigin === undefined) {
    perOrigin = new Map()
    mintingKeys.set(master.key, perOrigin)
  }
  let found = perOrigin.get(origin)
  if (found === undefined) {
    if (perOrigin.size >= MINTING_CACHE_MAX) perOrigin.clear()
    found = { id: master.id, key: tokenKeyFor(master, origin) }
    perOrigin.set(origin, found)
  }
  return found
}

/** The IdP's identity keys: the current one signs, every key id's public key verifies. */
export function identityKeysOf(keyring: Keyring): { readonly signer: IdentitySigningKey; readonly publicKeyFor: (kid: string) => KeyObject | undefined } {
  const pairs = new Map([...keyring.byId.values()].map((k) => [k.id, identityKeyFor(k)]))
  return { signer: pairs.get(keyring.current.id) as IdentitySigningKey, publicKeyFor: (kid) => pairs.get(kid)?.publicKey }
}

/** Everything an app needs, derived from the IdP's keyring: for apps still given SYNC_KEYS. */
export function appKeyringFrom(keyring: Keyring, origin: string): AppKeyring {
  return {
    byId: new Map([...keyring.byId.values()].map((k) => [k.id, { id: k.id, tokenKey: tokenKeyFor(k, origin), identityKey: identityKeyFor(k).publicKey }])),
  }
}

/** The `appKeys` value for `origin`, for `tessera app-key`. */
export function formatAppKeys(keyring: Keyring, origin: string): string {
  return [...appKeyringFrom(keyring, origin).byId.values()].map((k) => {
    const publicRaw = k.identityKey.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length)
    return `${k.id}.${k.tokenKey.export().toString('base64url')}.${publicRaw.toString('base64url')}`
  }).join(',')
}

const APP_KEY = /^([A-Za-z0-9_-]{1,32})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9_-]{43})$/

/**
 * Parses an `appKeys` value; pushes one problem per bad entry (naming `name[i]`, never the key) and
 * returns undefined when there is any.
 */
export function parseAppKeys(raw: string, name: string, problems: string[]): AppKeyring | undefined {
  const entries = listEntries(raw)
  const before = problems.length
  if (entries.length === 0) problems.push(`${name}: at least one app key is required (npx tessera app-key <origin>)`)
  const byId = new Map<string, AppKey>()
  const ids = new Set<string>() // every id written, a bad key's too
  for (const { entry, index: i } of entries) {
    const m = APP_KEY.exec(entry)
    if (m === null) { problems.push(`${name}[${i}]: must be <id>.<token key>.<public key> as printed by npx tessera app-key <origin>`); continue }
    const [, id, token, pub] = m as unknown as [string, string, string, string]
    if (ids.has(id)) { problems.push(`${name}[${i}]: key id ${id} appears twice`); continue }
    ids.add(id)
    try {
      const identityKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(pub, 'base64url')]), format: 'der', type: 'spki' })
      byId.set(id, { id, tokenKey: createSecretKey(Buffer.from(token, 'base64url')), identityKey })
    } catch {
      problems.push(`${name}[${i}] (id ${id}): the public key is not an Ed25519 key`)
    }
  }
  return problems.length > before ? undefined : { byId }
}
