/**
 * Each user's passkeys: durable user data (no TTL), so the Redis that holds them must persist (AOF).
 * Only public data is kept: a credential's private key never leaves its authenticator.
 *
 * Per user, fields of the user's factor hash (keys.factors, beside TOTP and recovery codes, so
 * `tessera factors reset` removes passkeys too and every count of a user's factors sees them): `pk:<id>` the
 * credential as registered (public key, transports, created at; never rewritten), `pkm:<id>` its
 * name, `pkn:<id>` its sign counter, `pkl:<id>` when it was last used. Beside it, one key per
 * credential id names its owner, so a discoverable sign-in (the browser says which passkey, not which
 * user) finds the user.
 */
import { randomBytes } from 'node:crypto'
import { keys } from '../../shared/keys.js'
import { inStore, type RedisClient } from '../../shared/redis.js'
import type { PasskeyCredential } from './webauthn.js'

export interface StoredPasskey extends PasskeyCredential {
  readonly name: string
  /** Epoch ms. */
  readonly createdAt: number
  readonly lastUsedAt: number | undefined
}

/** Passkey names are the user's own labels ("Laptop", "Phone"): plain text, this long at most. */
export const PASSKEY_NAME_MAX = 64

// KEYS: the user's hash. ARGV: credential id, new counter, now. Returns 1 recorded, 0 no such
// passkey (removed meanwhile), -1 the counter did not go up. Read and write in one step, so two
// answers signed with one counter value (a cloned authenticator) cannot both pass.
const RECORD_USE = `if redis.call('HEXISTS', KEYS[1], 'pk:' .. ARGV[1]) == 0 then return 0 end
local old = tonumber(redis.call('HGET', KEYS[1], 'pkn:' .. ARGV[1]) or '0')
local new = tonumber(ARGV[2])
if (new > 0 or old > 0) and new <= old then return -1 end
redis.call('HSET', KEYS[1], 'pkn:' .. ARGV[1], ARGV[2], 'pkl:' .. ARGV[1], ARGV[3])
return 1`

// KEYS: the user's factor hash. ARGV: the passkey's fields. Removes them; when no factor is left
// (no TOTP, no other passkey), the recovery codes go too: they stand in for a factor, not beside
// none (factor-store.ts's REMOVE_TOTP does the same). Returns how many fields were removed.
const REMOVE = `local removed = redis.call('HDEL', KEYS[1], unpack(ARGV))
if removed == 0 then return 0 end
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if f == 'totp' or string.sub(f, 1, 3) == 'pk:' then return removed end
end
for _, f in ipairs(fields) do
  if string.sub(f, 1, 3) == 'rc:' then redis.call('HDEL', KEYS[1], f) end
end
return removed`

// KEYS: the owner key. ARGV: username. Deletes it only if it still names this user.
const RELEASE_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`

interface PasskeyCommands {
  tesseraPasskeyUse(key: string, id: string, counter: number, now: number): Promise<number>
  tesseraPasskeyRelease(key: string, username: string): Promise<number>
  tesseraPasskeyRemove(key: string, ...fields: string[]): Promise<number>
}

// Field prefixes; `pk:` alone marks a passkey, so whoever counts a user's factors counts these.
const F = { registered: 'pk:', name: 'pkm:', counter: 'pkn:', lastUsed: 'pkl:' } as const
const fieldsOf = (id: string): [string, string, string, string] => [F.registered + id, F.name + id, F.counter + id, F.lastUsed + id]

interface Registered { readonly publicKey: string; readonly transports: readonly string[]; readonly createdAt: number }

export class PasskeyStore {
  readonly #redis: RedisClient & PasskeyCommands

  constructor(redis: RedisClient) {
    if (typeof (redis as Partial<PasskeyCommands>).tesseraPasskeyUse !== 'function') {
      redis.defineCommand('tesseraPasskeyUse', { numberOfKeys: 1, lua: RECORD_USE })
      redis.defineCommand('tesseraPasskeyRelease', { numberOfKeys: 1, lua: RELEASE_OWNER })
      redis.defineCommand('tesseraPasskeyRemove', { numberOfKeys: 1, lua: REMOVE })
    }
    this.#redis = redis as RedisClient & PasskeyCommands
  }

  /** The user's passkeys, oldest first. */
  async list(username: string): Promise<StoredPasskey[]> {
    const fields = await inStore(() => this.#redis.hgetall(keys.factors(username)))
    const found: StoredPasskey[] = []
    for (const [field, value] of Object.entries(fields)) {
      if (!field.startsWith(F.registered)) continue
      const id = field.slice(F.registered.length)
      found.push(toPasskey(id, value, fields[F.name + id], fields[F.counter + id], fields[F.lastUsed + id]))
    }
    return found.sort((a, b) => a.createdAt - b.createdAt)
  }

  async get(username: string, id: string): Promise<StoredPasskey | undefined> {
    const [r, m, n, l] = await inStore(() => this.#redis.hmget(keys.factors(username), ...fieldsOf(id)))
    return r === null || r === undefined ? undefined : toPasskey(id, r, m, n, l)
  }

  async count(username: string): Promise<number> {
    return (await this.list(username)).length
  }

  /** Who registered the passkey with this credential id, if anyone still has it. */
  async ownerOf(credentialId: string): Promise<string | undefined> {
    return (await inStore(() => this.#redis.get(keys.passkeyOwner(credentialId)))) ?? undefined
  }

  /**
   * The user's WebAuthn user handle, made on first use: random, so an authenticator stores no user
   * name or anything derived from one, and the same for all the user's passkeys.
   */
  async userHandle(username: string): Promise<Uint8Array> {
    const key = keys.userFactor(username, 'webauthn')
    await inStore(() => this.#redis.set(key, randomBytes(32).toString('base64url'), 'NX'))
    const value = await inStore(() => this.#redis.get(key))
    return Buffer.from(value ?? '', 'base64url')
  }

  /** Keeps a newly registered passkey. Resolves to false when its credential id is already registered (to anyone). */
  async add(username: string, credential: PasskeyCredential, name: string, now = Date.now()): Promise<boolean> {
    const claimed = await inStore(() => this.#redis.set(keys.passkeyOwner(credential.id), username, 'NX'))
    // An owner key left behind (a registration racing `tessera factors reset`) is this user's to
    // claim again; anyone else's is not.
    if (claimed !== 'OK' && !((await this.ownerOf(credential.id)) === username && (await this.get(username, credential.id)) === undefined)) return false
    const registered: Registered = {
      publicKey: Buffer.from(credential.publicKey).toString('base64url'),
      transports: credential.transports,
      createdAt: now,
    }
    await inStore(() => this.#redis.hset(keys.factors(username),
      F.registered + credential.id, JSON.stringify(registered), F.name + credential.id, name, F.counter + credential.id, String(credential.counter)))
    return true
  }

  /** Renames one of the user's passkeys. Resolves to false when the user has no such passkey. */
  async rename(username: string, id: string, name: string): Promise<boolean> {
    const key = keys.factors(username)
    if ((await inStore(() => this.#redis.hexists(key, F.registered + id))) === 0) return false
    await inStore(() => this.#redis.hset(key, F.name + id, name))
    return true
  }

  /** Removes one of the user's passkeys: from then on it signs no one in. Resolves to false when there was none. */
  async remove(username: string, id: string): Promise<boolean> {
    const removed = await inStore(() => this.#redis.tesseraPasskeyRemove(keys.factors(username), ...fieldsOf(id)))
    await inStore(() => this.#redis.tesseraPasskeyRelease(keys.passkeyOwner(id), username))
    return removed > 0
  }

  /**
   * Lets go of the owner keys of `ids` that still name `username` (after `tessera factors reset`
   * deleted the factor hash): they have no TTL, so left behind they would stay for ever.
   */
  async releaseOwners(username: string, ids: readonly string[]): Promise<void> {
    // One key each, in slots of their own (a Cluster): one call per key, not one script.
    for (const id of ids) await inStore(() => this.#redis.tesseraPasskeyRelease(keys.passkeyOwner(id), username))
  }

  /**
   * Records a verified use: the authenticator's new sign counter and the time. 'regressed' when the
   * counter did not go up (where the authenticator keeps one: a clone, or a replay); 'gone' when the
   * passkey was removed meanwhile. Either way the sign-in must be refused.
   */
  async recordUse(username: string, id: string, counter: number, now = Date.now()): Promise<'ok' | 'regressed' | 'gone'> {
    const verdict = await inStore(() => this.#redis.tesseraPasskeyUse(keys.factors(username), id, counter, now))
    return verdict === 1 ? 'ok' : verdict === -1 ? 'regressed' : 'gone'
  }
}

function toPasskey(id: string, registered: string, name: string | null | undefined, counter: string | null | undefined, lastUsed: string | null | undefined): StoredPasskey {
  const r = JSON.parse(registered) as Registered
  return {
    id,
    publicKey: new Uint8Array(Buffer.from(r.publicKey, 'base64url')),
    transports: r.transports,
    counter: Number(counter ?? '0'),
    name: name ?? '',
    createdAt: r.createdAt,
    lastUsedAt: lastUsed === null || lastUsed === undefined ? undefined : Number(lastUsed),
  }
}
