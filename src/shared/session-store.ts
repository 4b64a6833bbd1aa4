/**
 * The one place that knows Tessera's Redis keys, encodings and TTLs.
 *
 * One shared session is a hash at `<prefix>{sid}:s` with fields
 *   u  user JSON      x  absolute expiry (epoch ms, Redis clock)
 *   i  idle timeout ms c  created at (epoch ms)      d:<key>  one JSON value per session-data key
 * Its TTL is min(idle, time left before x) and every read through a handle refreshes it.
 *
 * Each app (and the IdP) holds its own handle to it: `<prefix>{sid}:h:<sha256(audience|secret)>`,
 * living until the absolute expiry. Only the hash of the secret is stored, so reading Redis yields
 * no cookie that works, and the audience in the hash means one app's handle is nothing at another.
 *
 * A minted token's id is `<prefix>{sid}:t:<jti>` with the token's TTL; redeeming deletes it.
 *
 * Each user's sessions are indexed in a set at `<prefix>{u:<sha256(username)>}:sessions` (for
 * `tessera sessions list|revoke`), kept as long as the longest session in it.
 *
 * Failed sign-ins are counted under `<prefix>{rl}:count:<sha256(subject)>`, bans under `{rl}:ban:`.
 *
 * All keys of one session share the `{sid}` hash tag, so every script touches one Cluster slot.
 * Every write has a TTL. Times come from Redis's own clock (TIME), never from the hosts'.
 */
import { Cluster, type Redis } from 'ioredis'
import type { RedisClient } from './redis.js'
import { randomId, sha256 } from './crypto.js'
import { StoreUnavailableError } from './errors.js'

export interface SessionUser {
  readonly username: string
  readonly displayName: string
  readonly email: string
  readonly groups: readonly string[]
}

export interface SessionSnapshot {
  readonly sid: string
  readonly user: SessionUser
  /**
   * A Map, not an object: keys are whatever apps chose (`__proto__`, `constructor`…), and an object
   * would inherit Object.prototype's names or have its prototype replaced by a stored value.
   */
  readonly data: ReadonlyMap<string, unknown>
  readonly createdAt: number
  readonly expiresAt: number
}

export interface SessionLimits {
  readonly idleMs: number
  readonly absoluteMs: number
}

/** What an operator may see of a session: never its id, only a fingerprint of it. */
export interface SessionSummary {
  readonly id: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly idleExpiresAt: number
}

/** A live handle: the sid it opens and the secret only the cookie holds. */
export interface Handle {
  readonly sid: string
  readonly secret: string
}

const NOW = `local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`

// KEYS: session, handle. ARGV: user JSON, idle ms, absolute ms.
const CREATE = `${NOW}
local idle = tonumber(ARGV[2]) local abs = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'x', now + abs, 'i', idle, 'c', now)
redis.call('PEXPIRE', KEYS[1], math.min(idle, abs))
redis.call('SET', KEYS[2], '1', 'PX', abs)
return 1`

// Refreshes the idle TTL and returns the session, if KEYS[2] exists and has not passed its absolute
// expiry. KEYS: handle, session, [ticket to record]. ARGV: [ticket TTL ms].
const RESOLVE = `if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local x = tonumber(redis.call('HGET', KEYS[2], 'x'))
if not x then return false end
${NOW}
local left = x - now
if left <= 0 then redis.call('DEL', KEYS[2]) return false end
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(redis.call('HGET', KEYS[2], 'i')), left))
if KEYS[3] then redis.call('SET', KEYS[3], '1', 'PX', ARGV[1]) end
return redis.call('HGETALL', KEYS[2])`

// Consumes a ticket and links a new handle to its session, atomically: of two racing redemptions
// exactly one sees DEL return 1. KEYS: ticket, session, new handle. Returns -1 replayed or expired,
// -2 session gone, else the session.
const REDEEM = `if redis.call('DEL', KEYS[1]) == 0 then return -1 end
local x = tonumber(redis.call('HGET', KEYS[2], 'x'))
if not x then return -2 end
${NOW}
local left = x - now
if left <= 0 then redis.call('DEL', KEYS[2]) return -2 end
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(redis.call('HGET', KEYS[2], 'i')), left))
redis.call('SET', KEYS[3], '1', 'PX', left)
return redis.call('HGETALL', KEYS[2])`

// Writes session data only while the session exists: a write racing a logout must not resurrect it
// (HSET on a missing key would create one with no TTL). KEYS: session. ARGV: key, JSON (''=delete)...
const SAVE = `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], 'd:' .. ARGV[i])
  else redis.call('HSET', KEYS[1], 'd:' .. ARGV[i], ARGV[i + 1]) end
end
return 1`

// Counts a sign-in attempt per subject BEFORE the password is checked, in one atomic step: a burst
// of parallel attempts cannot all pass a check made before any of them is counted. Past the limit the
// subject is banned. KEYS: (count, ban) pairs. ARGV: find ms, max, ban ms. Returns 1 when banned.
const ATTEMPT = `for i = 2, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 1 end
end
local banned = 0
for i = 1, #KEYS, 2 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
  if n > tonumber(ARGV[2]) then
    redis.call('SET', KEYS[i + 1], '1', 'PX', ARGV[3])
    redis.call('DEL', KEYS[i])
    banned = 1
  end
end
return banned`

// A successful sign-in takes its own attempt back off each count. KEYS: counts.
const SUCCEEDED = `for i = 1, #KEYS do
  if redis.call('DECR', KEYS[i]) <= 0 then redis.call('DEL', KEYS[i]) end
end
return 1`

/** Authelia's regulation defaults: 3 failures within 2 minutes ban for 5 minutes. */
export interface ThrottlePolicy {
  readonly maxRetries: number
  readonly findTimeMs: number
  readonly banTimeMs: number
}

// Adds a session to its user's index, which lives as long as the longest session in it.
// KEYS: index. ARGV: sid, absolute ms.
const INDEX = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`

interface TesseraCommands {
  tesseraCreate(k1: string, k2: string, user: string, idle: number, abs: number): Promise<number>
  tesseraResolve(...args: (string | number)[]): Promise<string[] | null>
  tesseraRedeem(k1: string, k2: string, k3: string): Promise<string[] | number>
  tesseraSave(...args: (string | number)[]): Promise<number>
  tesseraAttempt(...args: (string | number)[]): Promise<number>
  tesseraSucceeded(...args: (string | number)[]): Promise<number>
  tesseraIndex(key: string, sid: string, absMs: number): Promise<number>
}

const SID = /^[A-Za-z0-9_-]{22}$/
const SECRET = /^[A-Za-z0-9_-]{43}$/

export class SessionStore {
  readonly #redis: RedisClient & TesseraCommands
  readonly #prefix: string
  readonly #waitReplicas: number
  /** Counts the client's (re)connections: WAIT only vouches for writes made on its own connection. */
  #connection = 0
  /** Hashed handle keys of the handles that cookies decode to (the same object per cookie), so a page view hashes nothing. */
  readonly #handleKeys = new WeakMap<Handle, { readonly audience: string; readonly key: string }>()

  /**
   * @param opts.waitReplicas replicas that must acknowledge a new session, each minted token id, each
   *   redeemed handle and each logout (Redis WAIT) before the browser is sent on, so a failover right
   *   after cannot lose them: a lost logout would bring the session back. Ignored on a Cluster, whose
   *   WAIT would go to a random node rather than the session's.
   */
  constructor(redis: RedisClient, opts: { prefix?: string; waitReplicas?: number } = {}) {
    defineScripts(redis)
    this.#redis = redis as RedisClient & TesseraCommands
    this.#prefix = opts.prefix ?? 'tessera:'
    this.#waitReplicas = redis instanceof Cluster ? 0 : (opts.waitReplicas ?? 0)
    if (this.#waitReplicas > 0) redis.on('ready', () => { this.#connection++ })
  }

  /** Creates a shared session and the first handle to it, for `audience`. */
  async create(user: SessionUser, limits: SessionLimits, audience: string): Promise<Handle> {
    const sid = randomId(16)
    const secret = randomId(32)
    const connection = this.#connection
    await this.#run(() => this.#redis.tesseraCreate(
      this.#sessionKey(sid), this.#handleKey(sid, secret, audience), JSON.stringify(user),
      limits.idleMs, limits.absoluteMs))
    // The per-user index lives in its own slot (Cluster), so it is a second, separate command.
    await this.#run(() => this.#redis.tesseraIndex(this.#userKey(user.username), sid, limits.absoluteMs))
    await this.#replicated(connection)
    return { sid, secret }
  }

  /**
   * With `waitReplicas`, resolves once that many replicas hold every write this client made since
   * `connection`; else (too few acknowledgements, or the client reconnected in between, when the
   * writes may have gone to a primary that a failover has since demoted) throws StoreUnavailableError.
   */
  async #replicated(connection: number): Promise<void> {
    if (this.#waitReplicas === 0) return
    const acked = await this.#run(() => (this.#redis as Redis).wait(this.#waitReplicas, 1000))
    if (acked < this.#waitReplicas) throw new StoreUnavailableError(new Error(`WAIT: ${acked} of ${this.#waitReplicas} replicas acknowledged`))
    // WAIT counts acknowledgements of this connection's writes only: after a reconnection (a
    // failover) it vouches for nothing written before it.
    if (this.#connection !== connection) throw new StoreUnavailableError(new Error('WAIT: reconnected since the write (failover)'))
  }

  /** The live sessions of a user, oldest first; ended ones are pruned from the index as they are found. */
  async listByUser(username: string): Promise<SessionSummary[]> {
    const userKey = this.#userKey(username)
    const sids = await this.#run(() => this.#redis.smembers(userKey))
    const found: SessionSummary[] = []
    for (const sid of sids) {
      const [created, expires] = await this.#run(() => this.#redis.hmget(this.#sessionKey(sid), 'c', 'x'))
      if (created === null || expires === null) {
        await this.#run(() => this.#redis.srem(userKey, sid))
        continue
      }
      const idleExpiresAt = Date.now() + (await this.#run(() => this.#redis.pttl(this.#sessionKey(sid))))
      found.push({ id: sha256(sid).slice(0, 12), createdAt: Number(created), expiresAt: Number(expires), idleExpiresAt })
    }
    return found.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Ends every session of a user, everywhere. Resolves to how many were live. */
  async revokeUser(username: string): Promise<number> {
    const userKey = this.#userKey(username)
    const sids = await this.#run(() => this.#redis.smembers(userKey))
    let ended = 0
    for (const sid of sids) ended += await this.#run(() => this.#redis.del(this.#sessionKey(sid)))
    await this.#run(() => this.#redis.del(userKey))
    return ended
  }

  /**
   * Returns the session a handle opens for `audience`, refreshing its idle timeout, or undefined
   * when the handle or the session is gone. With `ticket`, also records a token id in the same
   * round trip (the IdP mints while it reads).
   */
  async resolve(handle: Handle, audience: string, ticket?: { jti: string; ttlMs: number }): Promise<SessionSnapshot | undefined> {
    let known = this.#handleKeys.get(handle)
    if (known === undefined || known.audience !== audience) {
      known = { audience, key: this.#handleKey(handle.sid, handle.secret, audience) }
      this.#handleKeys.set(handle, known)
    }
    const keys = [known.key, this.#sessionKey(handle.sid)]
    const args: (string | number)[] = ticket === undefined
      ? [2, ...keys]
      : [3, ...keys, this.#ticketKey(handle.sid, ticket.jti), ticket.ttlMs]
    const connection = this.#connection
    const reply = await this.#run(() => this.#redis.tesseraResolve(...args))
    // A recorded token id must survive a failover too, or its redemption would answer 403.
    if (reply && ticket !== undefined) await this.#replicated(connection)
    return reply ? toSnapshot(handle.sid, reply) : undefined
  }

  /** Records a minted token's id for `ttlMs` (replicated first, with `waitReplicas`). */
  async recordTicket(sid: string, jti: string, ttlMs: number): Promise<void> {
    const connection = this.#connection
    await this.#run(() => this.#redis.set(this.#ticketKey(sid, jti), '1', 'PX', ttlMs))
    await this.#replicated(connection)
  }

  /**
   * Consumes token `jti` of session `sid` and links a new handle for `audience`.
   * Resolves to the handle and session, or to 'replayed' (used, expired or never minted) or 'gone'.
   */
  async redeem(sid: string, jti: string, audience: string): Promise<{ handle: Handle; session: SessionSnapshot } | 'replayed' | 'gone'> {
    const secret = randomId(32)
    const connection = this.#connection
    const reply = await this.#run(() => this.#redis.tesseraRedeem(
      this.#ticketKey(sid, jti), this.#sessionKey(sid), this.#handleKey(sid, secret, audience)))
    if (reply === -1) return 'replayed'
    if (typeof reply === 'number') return 'gone'
    await this.#replicated(connection)
    return { handle: { sid, secret }, session: toSnapshot(sid, reply) }
  }

  /** Applies changed data keys (undefined deletes). Resolves false when the session no longer exists. */
  async save(sid: string, changes: ReadonlyMap<string, unknown>): Promise<boolean> {
    if (changes.size === 0) return true
    const args: string[] = []
    for (const [key, value] of changes) args.push(key, value === undefined ? '' : JSON.stringify(value))
    return (await this.#run(() => this.#redis.tesseraSave(1, this.#sessionKey(sid), ...args))) === 1
  }

  /** Ends a session everywhere: every handle to it now opens nothing (replicated first, with `waitReplicas`). */
  async destroy(sid: string): Promise<void> {
    const connection = this.#connection
    await this.#run(() => this.#redis.del(this.#sessionKey(sid)))
    await this.#replicated(connection)
  }

  /**
   * Counts a sign-in attempt for each subject (e.g. `user:alice`, `ip:192.0.2.1`) before the
   * password is checked. Resolves true when any subject is banned now (this attempt included).
   */
  async countAttempt(subjects: readonly string[], policy: ThrottlePolicy): Promise<boolean> {
    const keys = subjects.flatMap((s) => [this.#throttleKey('count', s), this.#throttleKey('ban', s)])
    return (await this.#run(() => this.#redis.tesseraAttempt(keys.length, ...keys, policy.findTimeMs, policy.maxRetries, policy.banTimeMs))) === 1
  }

  /** A successful sign-in: its attempt no longer counts against its subjects. */
  async forgiveAttempt(subjects: readonly string[]): Promise<void> {
    const keys = subjects.map((s) => this.#throttleKey('count', s))
    await this.#run(() => this.#redis.tesseraSucceeded(keys.length, ...keys))
  }

  async ping(): Promise<void> {
    await this.#run(() => this.#redis.ping())
  }

  /** Checks a handle's shape; the cookie layer calls this before anything reaches Redis. */
  static isWellFormed(handle: Handle): boolean {
    return SID.test(handle.sid) && SECRET.test(handle.secret)
  }

  #sessionKey(sid: string): string {
    return `${this.#prefix}{${sid}}:s`
  }

  #handleKey(sid: string, secret: string, audience: string): string {
    return `${this.#prefix}{${sid}}:h:${sha256(`${audience}|${secret}`)}`
  }

  #ticketKey(sid: string, jti: string): string {
    return `${this.#prefix}{${sid}}:t:${sha256(jti)}`
  }

  #userKey(username: string): string {
    return `${this.#prefix}{u:${sha256(username)}}:sessions`
  }

  #throttleKey(kind: 'count' | 'ban', subject: string): string {
    // Hashed: user names and addresses are personal data and need not sit in Redis in clear.
    return `${this.#prefix}{rl}:${kind}:${sha256(subject)}`
  }

  async #run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op()
    } catch (cause) {
      throw new StoreUnavailableError(cause)
    }
  }
}

function defineScripts(redis: RedisClient): void {
  const r = redis as RedisClient & Partial<TesseraCommands>
  if (typeof r.tesseraCreate === 'function') return // already defined on a shared client
  redis.defineCommand('tesseraCreate', { numberOfKeys: 2, lua: CREATE })
  redis.defineCommand('tesseraResolve', { lua: RESOLVE })
  redis.defineCommand('tesseraRedeem', { numberOfKeys: 3, lua: REDEEM })
  redis.defineCommand('tesseraSave', { lua: SAVE })
  redis.defineCommand('tesseraAttempt', { lua: ATTEMPT })
  redis.defineCommand('tesseraSucceeded', { lua: SUCCEEDED })
  redis.defineCommand('tesseraIndex', { numberOfKeys: 1, lua: INDEX })
}

function toSnapshot(sid: string, flat: string[]): SessionSnapshot {
  let user: SessionUser | undefined
  let expiresAt = 0
  let createdAt = 0
  const data = new Map<string, unknown>()
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i] as string
    const value = flat[i + 1] as string
    if (field === 'u') user = JSON.parse(value) as SessionUser
    else if (field === 'x') expiresAt = Number(value)
    else if (field === 'c') createdAt = Number(value)
    else if (field.startsWith('d:')) data.set(field.slice(2), JSON.parse(value))
  }
  if (user === undefined) throw new StoreUnavailableError(new Error('session record without a user'))
  return { sid, user, data, createdAt, expiresAt }
}
