/**
 * Each user's sessions, for `tessera sessions list|revoke` (key layout: keys.ts). The index lives in
 * its own Cluster slot and as long as the longest session in it; ended sessions are pruned as found.
 */
import { inStore, type RedisClient } from './redis.js'
import { sha256 } from './crypto.js'
import { keys } from './keys.js'
import type { SessionSummary } from './session.js'

// KEYS: index. ARGV: sid, absolute ms.
const INDEX = `redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`

interface IndexCommands {
  tesseraIndex(key: string, sid: string, absMs: number): Promise<number>
}

export class UserIndex {
  readonly #redis: RedisClient & IndexCommands

  constructor(redis: RedisClient) {
    if (typeof (redis as Partial<IndexCommands>).tesseraIndex !== 'function') {
      redis.defineCommand('tesseraIndex', { numberOfKeys: 1, lua: INDEX })
    }
    this.#redis = redis as RedisClient & IndexCommands
  }

  /** Adds session `sid` to its user's index, kept for at least `absoluteMs`. */
  async add(username: string, sid: string, absoluteMs: number): Promise<void> {
    await inStore(() => this.#redis.tesseraIndex(keys.userIndex(username), sid, absoluteMs))
  }

  /** The live sessions of a user, oldest first. */
  async list(username: string): Promise<SessionSummary[]> {
    const indexKey = keys.userIndex(username)
    const sids = await inStore(() => this.#redis.smembers(indexKey))
    const found: SessionSummary[] = []
    for (const sid of sids) {
      const [created, expires] = await inStore(() => this.#redis.hmget(keys.session(sid), 'c', 'x'))
      if (created === null || expires === null) {
        await inStore(() => this.#redis.srem(indexKey, sid))
        continue
      }
      const idleExpiresAt = Date.now() + (await inStore(() => this.#redis.pttl(keys.session(sid))))
      found.push({ id: sha256(sid).slice(0, 12), createdAt: Number(created), expiresAt: Number(expires), idleExpiresAt })
    }
    return found.sort((a, b) => a.createdAt - b.createdAt)
  }

  /** Ends every session of a user, everywhere. Resolves to how many were live. */
  async revokeAll(username: string): Promise<number> {
    const indexKey = keys.userIndex(username)
    const sids = await inStore(() => this.#redis.smembers(indexKey))
    let ended = 0
    for (const sid of sids) ended += await inStore(() => this.#redis.del(keys.session(sid)))
    await inStore(() => this.#redis.del(indexKey))
    return ended
  }
}
