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
import { handlePlaceOf, keys, type HandlePlace } from './keys.js'
import { Replication } from './replication.js'
import { ID_BYTES, type Handle, type SessionLimits, type SessionSnapshot, type SessionUser } from './session.js'
import { DATA_FIELD, LEGACY_DATA_PREFIX, LUA_MERGE_DATA, dataEntryPrefix, parseData } from './session-data.js'
import { signIdentity, type AuthMethod, type IdentityVerifier } from './identity.js'
import type { IdentitySigningKey } from './app-keys.js'

/** The longest User-Agent a session keeps: the header is the client's to choose, its size is ours. */
export const MAX_USER_AGENT = 256

/** Lua: `now`, Redis's clock in epoch ms. */
export const LUA_NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

/**
 * Lua: `session_reply(key)`, the session's fields a reader uses (`toSnapshot` and the idle timeout:
 * u, c, i and the data), without its handles, origins and User-Agent. A session a user has taken
 * to a few apps holds a dozen fields, most of them handles; every element a script returns costs
 * Redis a conversion out of Lua and the client a Buffer and a string (bench/README.md, issue 17).
 * Four HGETs, not HMGET (an app's Redis user may predate +hmget); a session an earlier Tessera
 * created (data as d:<key> fields, no d) is picked over whole.
 */
export const LUA_SESSION_REPLY = `local function session_reply(key)
  local out = {}
  local d = redis.call('HGET', key, '${DATA_FIELD}')
  if d then
    out[1] = '${DATA_FIELD}' out[2] = d
    for _, f in ipairs({'u', 'c', 'i'}) do
      local v = redis.call('HGET', key, f)
      if v then out[#out + 1] = f out[#out + 1] = v end
    end
    return out
  end
  local all = redis.call('HGETALL', key)
  for j = 1, #all, 2 do
    local f = all[j]
    if f == 'u' or f == 'c' or f == 'i' or string.sub(f, 1, 2) == '${LEGACY_DATA_PREFIX}' then out[#out + 1] = f out[#out + 1] = all[j + 1] end
  end
  return out
end`

// KEYS: session. ARGV: user JSON, idle ms, absolute ms, User-Agent ('' = none), the handle's field.
const CREATE = `${LUA_NOW}
local idle = tonumber(ARGV[2]) local abs = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'x', now + abs, 'i', idle, 'c', now, '${DATA_FIELD}', '', ARGV[5], '1')
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
// (HSET on a missing key would create one with no TTL). Each key is replaced on its own, so two apps
// saving different keys at once both keep theirs (session-data.ts). A session an earlier Tessera
// created keeps its d:<key> fields. KEYS: session. ARGV: key, its line prefix, JSON (''=delete)...
const SAVE = `${LUA_MERGE_DATA}
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local blob = redis.call('HGET', KEYS[1], '${DATA_FIELD}')
if blob then
  redis.call('HSET', KEYS[1], '${DATA_FIELD}', merge_data(blob, ARGV, 1))
  return 1
end
for i = 1, #ARGV, 3 do
  if ARGV[i + 2] == '' then redis.call('HDEL', KEYS[1], '${LEGACY_DATA_PREFIX}' .. ARGV[i])
  else redis.call('HSET', KEYS[1], '${LEGACY_DATA_PREFIX}' .. ARGV[i], ARGV[i + 2]) end
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
  /** Told once when the store falls back to a slower way for good (a Redis user without +hmget). */
  readonly notice?: (message: string) => void
}

export class Sessions {
  readonly #redis: RedisClient & SessionCommands
  readonly #replication: Replication
  readonly #identity: IdentityVerifier
  /** When this process last set each session's idle TTL, and how long that counts as fresh. */
  readonly #refreshed = new BoundedMemo<string, { readonly at: number; readonly forMs: number }>(REFRESHED_MAX)
  /** Whether the plain read may use HMGET: false once Redis refused it (NOPERM). */
  #hmget = true
  readonly #notice: ((message: string) => void) | undefined

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
    this.#notice = opts.notice
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
      const read = await this.#plainRead(sessionKey, place)
      if (read === 'gone') return undefined
      // No such field: a handle an earlier Tessera kept as its own key, which RESOLVE reads (or none).
      if (read !== 'no-field') return toSnapshot(handle.sid, read, this.#identity)
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
   * The read of a page view whose session this process refreshed lately: one HMGET of the fields a
   * reader uses and the handle's (a fixed few, however many apps and keys the session has), or, for
   * a session an earlier Tessera created or a Redis user without +hmget, one HGETALL. The flat
   * fields for `toSnapshot`; 'gone' when the session is (logout, expiry); 'no-field' when the
   * handle is not one of its fields.
   */
  async #plainRead(sessionKey: string, place: HandlePlace): Promise<string[] | 'gone' | 'no-field'> {
    if (this.#hmget) {
      const view = await inStore(() => this.#view(sessionKey, place.field))
      if (view !== undefined) {
        const [u, c, d, h] = view
        if (u === null || u === undefined) return 'gone'
        if (h === null || h === undefined) return 'no-field'
        if (d !== null && d !== undefined) return c === null || c === undefined ? ['u', u, DATA_FIELD, d] : ['u', u, 'c', c, DATA_FIELD, d]
        // No d field: data kept as d:<key> fields, which only the whole hash shows.
      }
    }
    const parts = await inStore(() => hgetallParts(this.#redis, sessionKey))
    const read = readerParts(parts, place.fieldBytes)
    if (read.hasHandle) return read.flat
    return parts.length === 0 ? 'gone' : 'no-field'
  }

  /** HMGET u c d <handle>, or undefined from the first NOPERM on: the app's Redis user predates +hmget (deploy.md). */
  async #view(sessionKey: string, field: string): Promise<(string | null)[] | undefined> {
    try {
      return await this.#redis.hmget(sessionKey, 'u', 'c', DATA_FIELD, field)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOPERM')) throw err
      this.#hmget = false
      this.#notice?.('this Redis user may not run HMGET, so every page view reads the whole session (HGETALL); add +hmget to its ACL (docs/deploy.md)')
      return undefined
    }
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
    for (const [key, value] of changes) args.push(key, dataEntryPrefix(key), value === undefined ? '' : JSON.stringify(value))
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
 * Of a session hash's HGETALL parts, the fields a reader uses (u, c, i and the data: d, or the d:
 * fields of an earlier Tessera's session, as `session_reply` picks them in Lua), decoded, and
 * whether the handle's field is among the rest. The
 * handles, app list and User-Agent, most of a session's parts, are compared as bytes or skipped,
 * never decoded.
 */
export function readerParts(parts: readonly Buffer[], handleField: Buffer): { readonly flat: string[]; readonly hasHandle: boolean } {
  const flat: string[] = []
  let hasHandle = false
  for (let j = 0; j + 1 < parts.length; j += 2) {
    const name = parts[j] as Buffer
    const first = name[0]
    if (name.length === 1 ? first === U || first === C || first === I || first === D : first === D && name[1] === COLON) {
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
  let data: Map<string, unknown> | undefined
  // An earlier Tessera's d:<key> fields count only in a session without a d field (session-data.ts).
  let legacy: Map<string, unknown> | undefined
  try {
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i] as string
      const value = flat[i + 1] as string
      if (field === 'u') signed = value
      else if (field === 'c') createdAt = Number(value)
      else if (field === DATA_FIELD) data = parseData(value)
      else if (field.startsWith(LEGACY_DATA_PREFIX)) (legacy ??= new Map()).set(field.slice(LEGACY_DATA_PREFIX.length), JSON.parse(value))
    }
  } catch {
    return undefined
  }
  data ??= legacy ?? new Map()
  const identity = signed === undefined ? undefined : verifier.verify(signed, sid)
  if (identity === undefined) return undefined
  return {
    sid, user: identity.user, auth: { methods: identity.methods, signedInAt: identity.signedInAt },
    data, createdAt, expiresAt: identity.expiresAt,
  }
}
