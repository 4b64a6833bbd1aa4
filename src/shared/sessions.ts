/**
 * Shared sessions and the handles that open them (key layout: keys.ts). A session's TTL is
 * min(idle, time left before its absolute expiry), and reads through a handle refresh it (at most
 * every idle/60 per process). A handle is a field of the session hash, so it ends with it.
 * Every write has a TTL; times come from Redis's own clock (TIME), never from the hosts'.
 */
import type { RedisClient } from './redis.js'
import { hgetallParts, inStore, pingRedis } from './redis.js'
import { randomId } from './crypto.js'
import { BoundedMemo } from './bounded-memo.js'
import { handlePlaceOf, keys } from './keys.js'
import { Replication } from './replication.js'
import { ID_BYTES, type Handle, type SessionLimits, type SessionSnapshot, type SessionUser } from './session.js'
import { signIdentity, type AuthMethod, type IdentityVerifier } from './identity.js'
import type { IdentitySigningKey } from './app-keys.js'

/** The longest User-Agent a session keeps: the header is the client's to choose, its size is ours. */
export const MAX_USER_AGENT = 256

/** Lua: `now`, Redis's clock in epoch ms. */
export const LUA_NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/**
 * Lua: `session_reply(key)`, the session's fields a reader uses (`toSnapshot` and the idle timeout:
 * u, c, i and the d: data), without its handles, origins and User-Agent. A session a user has taken
 * to a few apps holds a dozen fields, most of them handles; every element a script returns costs
 * Redis a conversion out of Lua and the client a Buffer and a string (bench/README.md, issue 17).
 */
export const LUA_SESSION_REPLY = `local function session_reply(key)
  local all = redis.call('HGETALL', key) local out = {}
  for j = 1, #all, 2 do
    local f = all[j]
    if f == 'u' or f == 'c' or f == 'i' or string.sub(f, 1, 2) == 'd:' then out[#out + 1] = f out[#out + 1] = all[j + 1] end
  end
  return out
end`

// KEYS: session. ARGV: user JSON, idle ms, absolute ms, User-Agent ('' = none), the handle's field.
const CREATE = `${LUA_NOW}
local idle = tonumber(ARGV[2]) local abs = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'x', now + abs, 'i', idle, 'c', now, ARGV[5], '1')
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'a', ARGV[4]) end
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs))
return 1`

// Refreshes the idle TTL and returns the session, if the handle is one of its fields (or, in a
// session an earlier Tessera created, still its own live key: then it becomes a field, so later
// reads are one HGETALL). A handle lives as long as the session, whose TTL never passes its
// absolute expiry. KEYS: session, the handle's key as an earlier Tessera kept it, [token id to
// record]. ARGV: the handle's field, [token TTL ms]. HGET, not HMGET: an app's Redis user (deploy.md)
// has no +hmget.
const RESOLVE = `${LUA_NOW}
${LUA_SESSION_REPLY}
local x = tonumber(redis.call('HGET', KEYS[1], 'x')) local idle = tonumber(redis.call('HGET', KEYS[1], 'i'))
if not x or not idle or x <= now then return false end
if not redis.call('HGET', KEYS[1], ARGV[1]) then
  if redis.call('PTTL', KEYS[2]) <= 0 then return false end
  redis.call('HSET', KEYS[1], ARGV[1], '1')
end
redis.call('PEXPIRE', KEYS[1], math.min(idle, x - now))
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end
return session_reply(KEYS[1])`

// A session's idle TTL is set again at most this often by one process: a fraction of the idle
// timeout, at most a minute. So a session may end up to idle/60 (at most a minute) before "last
// request + idle timeout", never after; and most page views skip the refresh's Redis work.
const REFRESH_FRACTION = 60
const REFRESH_MAX_MS = 60_000
const REFRESHED_MAX = 10_000

// Writes session data only while the session exists: a write racing a logout must not resurrect it
// (HSET on a missing key would create one with no TTL). KEYS: session. ARGV: key, JSON (''=delete)...
const SAVE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], 'd:' .. ARGV[i])
  else redis.call('HSET', KEYS[1], 'd:' .. ARGV[i], ARGV[i + 1]) end
end
return 1`

// Replaces the signed identity only if it is still the one read (compare-and-set), leaving the
// session's TTL, expiry, handles and data as they are. KEYS: session. ARGV: identity read, new identity.
const RESIGN = `if redis.call('HGET', KEYS[1], 'u') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
return 1`

interface SessionCommands {
  tesseraCreate(session: string, user: string, idle: number, abs: number, agent: string, handle: string): Promise<number>
  tesseraResolve(...args: (string | number)[]): Promise<string[] | null>
  tesseraSave(...args: (string | number)[]): Promise<number>
  tesseraResign(session: string, read: string, identity: string): Promise<number>
}

export interface StoreOptions {
  /** Checks the IdP's signature on every record read: a record that does not verify is no session. */
  readonly identity: IdentityVerifier
  /** Replicas that must acknowledge each write that must survive a failover (Redis WAIT). */
  readonly waitReplicas?: number
}

export class Sessions {
  readonly #redis: RedisClient & SessionCommands
  readonly #replication: Replication
  readonly #identity: IdentityVerifier
  /** When this process last set each session's idle TTL, and how long that counts as fresh. */
  readonly #refreshed = new BoundedMemo<string, { readonly at: number; readonly forMs: number }>(REFRESHED_MAX)

  constructor(redis: RedisClient, opts: StoreOptions) {
    if (typeof (redis as Partial<SessionCommands>).tesseraCreate !== 'function') {
      redis.defineCommand('tesseraCreate', { numberOfKeys: 1, lua: CREATE })
      redis.defineCommand('tesseraResolve', { lua: RESOLVE })
      redis.defineCommand('tesseraSave', { lua: SAVE })
      redis.defineCommand('tesseraResign', { numberOfKeys: 1, lua: RESIGN })
    }
    this.#redis = redis as RedisClient & SessionCommands
    this.#replication = new Replication(redis, opts.waitReplicas ?? 0)
    this.#identity = opts.identity
  }

  /**
   * Creates a shared session, its identity signed with `signer` (the IdP's key), and the first handle
   * to it, for `audience` (replicated, with `waitReplicas`). `userAgent`, the browser's own words at
   * sign-in, is kept (cut to MAX_USER_AGENT characters) only for the user's sessions page.
   */
  async create(user: SessionUser, methods: readonly AuthMethod[], limits: SessionLimits, audience: string, signer: IdentitySigningKey, userAgent?: string): Promise<Handle> {
    const sid = randomId(ID_BYTES.sid)
    const handle: Handle = { sid, secret: randomId(ID_BYTES.secret) }
    const now = Date.now()
    const identity = signIdentity(signer, { sid, user, methods, signedInAt: now, expiresAt: now + limits.absoluteMs })
    const mark = this.#replication.mark()
    await inStore(() => this.#redis.tesseraCreate(keys.session(sid), identity, limits.idleMs, limits.absoluteMs,
      (userAgent ?? '').slice(0, MAX_USER_AGENT), handlePlaceOf(handle, audience).field))
    await this.#replication.confirm(mark)
    return handle
  }

  /**
   * Returns the session a handle opens for `audience`, refreshing its idle timeout, or undefined
   * when the handle or the session is gone (or its record is unreadable). The refresh is skipped
   * when this process did it less than idle/60 (at most a minute) ago; the handle and the session
   * are read all the same. With `token`, also records a token id in the same round trip (the IdP
   * mints while it reads), replicated with `waitReplicas`.
   */
  async resolve(handle: Handle, audience: string, token?: { id: string; ttlMs: number }): Promise<SessionSnapshot | undefined> {
    const place = handlePlaceOf(handle, audience)
    const sessionKey = keys.session(handle.sid)
    const now = Date.now()
    const last = token === undefined ? this.#refreshed.get(handle.sid) : undefined
    if (last !== undefined && now - last.at < last.forMs) {
      // One plain HGETALL: the session gone (logout, expiry) reads empty; the handle is a field.
      const parts = await inStore(() => hgetallParts(this.#redis, sessionKey))
      const read = readerParts(parts, place.fieldBytes)
      if (read.hasHandle) return toSnapshot(handle.sid, read.flat, this.#identity)
      // No such field: no session, or a handle an earlier Tessera kept as its own key, which RESOLVE reads.
      if (parts.length === 0) return undefined
    }
    const args: (string | number)[] = token === undefined
      ? [2, sessionKey, place.legacyKey, place.field]
      : [3, sessionKey, place.legacyKey, keys.token(handle.sid, token.id), place.field, token.ttlMs]
    const mark = this.#replication.mark()
    const reply = await inStore(() => this.#redis.tesseraResolve(...args))
    if (!reply) return undefined
    // A recorded token id must survive a failover too, or its redemption would answer 403.
    if (token !== undefined) await this.#replication.confirm(mark)
    this.noteRefreshed(handle.sid, Number(fieldOf(reply, 'i')), now)
    return toSnapshot(handle.sid, reply, this.#identity)
  }

  /**
   * Notes that `sid`'s idle TTL was set just now (a redemption sets it too: `Redemption.idleMs`), so
   * this process's reads of it skip the refresh for the next idle/60.
   */
  noteRefreshed(sid: string, idleMs: number, now = Date.now()): void {
    if (idleMs > 0) this.#refreshed.set(sid, { at: now, forMs: Math.min(idleMs / REFRESH_FRACTION, REFRESH_MAX_MS) })
  }

  /** Applies changed data keys (undefined deletes). Resolves false when the session no longer exists. */
  async save(sid: string, changes: ReadonlyMap<string, unknown>): Promise<boolean> {
    if (changes.size === 0) return true
    const args: string[] = []
    for (const [key, value] of changes) args.push(key, value === undefined ? '' : JSON.stringify(value))
    return (await inStore(() => this.#redis.tesseraSave(1, keys.session(sid), ...args))) === 1
  }

  /**
   * Adds a way the user proved who they are (a second factor at step-up) to a live session: its
   * identity is signed again with `signer`, with the same sid, user, sign-in time and absolute expiry,
   * so every handle keeps working and no limit moves. Resolves false when the session is gone, its
   * record does not verify, or it changed while this ran (the caller starts again).
   */
  async addMethod(sid: string, method: AuthMethod, signer: IdentitySigningKey): Promise<boolean> {
    const read = await inStore(() => this.#redis.hget(keys.session(sid), 'u'))
    const identity = read === null ? undefined : this.#identity.verify(read, sid)
    if (read === null || identity === undefined) return false
    const next = signIdentity(signer, { ...identity, methods: [...identity.methods, method] })
    const mark = this.#replication.mark()
    const ok = (await inStore(() => this.#redis.tesseraResign(keys.session(sid), read, next))) === 1
    if (ok) await this.#replication.confirm(mark)
    return ok
  }

  /** Resolves when the store answers (readiness). */
  async ping(): Promise<void> {
    await pingRedis(this.#redis)
  }

  /** Ends a session everywhere: every handle to it now opens nothing (replicated first, with `waitReplicas`). */
  async destroy(sid: string): Promise<void> {
    const mark = this.#replication.mark()
    await inStore(() => this.#redis.del(keys.session(sid)))
    await this.#replication.confirm(mark)
  }

}

/** A field's value in a flat HGETALL reply (field, value, …). */
export function fieldOf(flat: readonly string[], field: string): string | undefined {
  for (let i = 0; i + 1 < flat.length; i += 2) if (flat[i] === field) return flat[i + 1]
  return undefined
}

const [U, C, I, D, COLON] = [0x75, 0x63, 0x69, 0x64, 0x3a] // 'u' 'c' 'i' 'd' ':'

/**
 * Of a session hash's HGETALL parts, the fields a reader uses (u, c, i and the d: data, as
 * `session_reply` picks them in Lua), decoded, and whether the handle's field is among the rest. The
 * handles, app list and User-Agent, most of a session's parts, are compared as bytes or skipped,
 * never decoded.
 */
export function readerParts(parts: readonly Buffer[], handleField: Buffer): { readonly flat: string[]; readonly hasHandle: boolean } {
  const flat: string[] = []
  let hasHandle = false
  for (let j = 0; j + 1 < parts.length; j += 2) {
    const name = parts[j] as Buffer
    const first = name[0]
    if (name.length === 1 ? first === U || first === C || first === I : first === D && name[1] === COLON) {
      flat.push(name.toString(), (parts[j + 1] as Buffer).toString())
    } else if (!hasHandle && name.length === handleField.length && name.equals(handleField)) {
      hasHandle = true
    }
  }
  return { flat, hasHandle }
}

/**
 * The session in a flat HGETALL reply, or undefined when the record cannot be read (bad JSON) or its
 * identity does not verify: a corrupt or forged record is no session, never a 503 that would send
 * the user away to retry.
 */
export function toSnapshot(sid: string, flat: readonly string[], verifier: IdentityVerifier): SessionSnapshot | undefined {
  let signed: string | undefined
  let createdAt = 0
  const data = new Map<string, unknown>()
  try {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i] as string
      const value = flat[i + 1] as string
      if (field === 'u') signed = value
      else if (field === 'c') createdAt = Number(value)
      else if (field.startsWith('d:')) data.set(field.slice(2), JSON.parse(value))
    }
  } catch {
    return undefined
  }
  const identity = signed === undefined ? undefined : verifier.verify(signed, sid)
  if (identity === undefined) return undefined
  return {
    sid, user: identity.user, auth: { methods: identity.methods, signedInAt: identity.signedInAt },
    data, createdAt, expiresAt: identity.expiresAt,
  }
}
