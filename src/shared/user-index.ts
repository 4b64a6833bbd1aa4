/**
 * Each user's sessions, for `tessera sessions list|revoke` and the user's own sessions page (key
 * layout: keys.ts). The index lives in its own Cluster slot and as long as the longest session in
 * it; ended sessions are pruned as found.
 */
import { inStore, type RedisClient } from './redis.js'
import { sha256 } from './crypto.js'
import { keys } from './keys.js'
import { Replication } from './replication.js'
import { LUA_NOW } from './sessions.js'
import type { AuthMethod, IdentityVerifier } from './identity.js'
import type { SessionSummary } from './session.js'

// KEYS: index. ARGV: sid, absolute ms.
const INDEX = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`

// One session's summary in one round trip, times on Redis's clock. KEYS: session.
// Returns false when the session is gone, else created, absolute expiry, idle ms, identity,
// User-Agent, apps, ms to idle expiry, now.
const SUMMARY = `local f = redis.call('HMGET', KEYS[1], 'c', 'x', 'i', 'u', 'a', 'o')
if not f[1] or not f[2] then return false end
${LUA_NOW}
return {f[1], f[2], f[3] or '0', f[4] or '', f[5] or '', f[6] or '', redis.call('PTTL', KEYS[1]), now}`

interface IndexCommands {
  tesseraIndex(key: string, sid: string, absMs: number): Promise<number>
  tesseraSummary(session: string): Promise<[string, string, string, string, string, string, number, number] | null>
}

/** The name a session goes by wherever people see it (CLI, sessions page): never its id. */
export function fingerprint(sid: string): string {
  return sha256(sid).slice(0, 12)
}

/** A session of the user's, as the IdP reads it: the id stays on the server, the summary is shown. */
export interface IndexedSession {
  readonly sid: string
  readonly summary: SessionSummary
  /** How the user signed in, from the signed identity (only when the index verifies identities). */
  readonly methods: readonly AuthMethod[]
}

export interface UserIndexOptions {
  /**
   * Verifies each session's signed identity: a session that does not verify, or that belongs to
   * another user (a sid another writer put in this user's index), is left out. Without it (the CLI,
   * which holds no keys) every live session in the index is listed, with no methods.
   */
  readonly identity?: IdentityVerifier
  /** Replicas that must acknowledge a revocation (Redis WAIT), as for a logout: a lost one would bring the sessions back. */
  readonly waitReplicas?: number
}

export class UserIndex {
  readonly #redis: RedisClient & IndexCommands
  readonly #identity: IdentityVerifier | undefined
  readonly #replication: Replication

  constructor(redis: RedisClient, opts: UserIndexOptions = {}) {
    if (typeof (redis as Partial<IndexCommands>).tesseraIndex !== 'function') {
      redis.defineCommand('tesseraIndex', { numberOfKeys: 1, lua: INDEX })
    }
    if (typeof (redis as Partial<IndexCommands>).tesseraSummary !== 'function') {
      redis.defineCommand('tesseraSummary', { numberOfKeys: 1, lua: SUMMARY })
    }
    this.#redis = redis as RedisClient & IndexCommands
    this.#identity = opts.identity
    this.#replication = new Replication(redis, opts.waitReplicas ?? 0)
  }

  /** Adds session `sid` to its user's index, kept for at least `absoluteMs`. */
  async add(username: string, sid: string, absoluteMs: number): Promise<void> {
    await inStore(() => this.#redis.tesseraIndex(keys.userIndex(username), sid, absoluteMs))
  }

  /** The live sessions of a user, oldest first. */
  async list(username: string): Promise<SessionSummary[]> {
    return (await this.sessions(username)).map((s) => s.summary)
  }

  /** The live sessions of a user with their ids, oldest first: for the IdP, never to be shown. */
  async sessions(username: string): Promise<IndexedSession[]> {
    const indexKey = keys.userIndex(username)
    const sids = await inStore(() => this.#redis.smembers(indexKey))
    const found: IndexedSession[] = []
    for (const sid of sids) {
      const reply = await inStore(() => this.#redis.tesseraSummary(keys.session(sid)))
      if (reply === null) {
        await inStore(() => this.#redis.srem(indexKey, sid))
        continue
      }
      const [created, expires, idle, record, userAgent, apps, ttl, now] = reply
      let methods: readonly AuthMethod[] = []
      if (this.#identity !== undefined) {
        const identity = this.#identity.verify(record, sid)
        if (identity === undefined || identity.user.username !== username) continue
        methods = identity.methods
      }
      const createdAt = Number(created)
      const idleExpiresAt = now + Math.max(ttl, 0)
      found.push({
        sid,
        methods,
        summary: {
          id: fingerprint(sid), createdAt, expiresAt: Number(expires), idleExpiresAt,
          lastSeenAt: Math.min(now, Math.max(createdAt, idleExpiresAt - Number(idle))),
          userAgent, apps: apps.split('\n').filter((a) => a !== ''),
        },
      })
    }
    return found.sort((a, b) => a.summary.createdAt - b.summary.createdAt)
  }

  /** Takes an ended session out of its user's index. */
  async remove(username: string, sid: string): Promise<void> {
    await inStore(() => this.#redis.srem(keys.userIndex(username), sid))
  }

  /** Ends every session of a user, everywhere (replicated first, with `waitReplicas`). Resolves to how many were live. */
  async revokeAll(username: string): Promise<number> {
    const indexKey = keys.userIndex(username)
    const sids = await inStore(() => this.#redis.smembers(indexKey))
    const mark = this.#replication.mark()
    let ended = 0
    for (const sid of sids) ended += await inStore(() => this.#redis.del(keys.session(sid)))
    await inStore(() => this.#redis.del(indexKey))
    await this.#replication.confirm(mark)
    return ended
  }
}
