/**
 * The one-time use of hand-over tokens: a minted token's id is recorded with the token's TTL, and
 * redeeming deletes it and links a new handle for the app, atomically (key layout: keys.ts).
 */
import { inStore, type RedisClient } from './redis.js'
import { randomId } from './crypto.js'
import { handlePlaceOf, keys } from './keys.js'
import { Replication } from './replication.js'
import { LUA_NOW, recordOf, toSnapshot, type StoreOptions } from './sessions.js'
import { ID_BYTES, type Handle, type SessionSnapshot } from './session.js'

/** The most app origins one session records, and the longest origin it records. */
export const MAX_APPS = 32
export const MAX_APP_ORIGIN = 256

// Of two racing redemptions exactly one sees DEL return 1. KEYS: token id, session. ARGV: the app's
// origin, the new handle's field. Returns -1 replayed or expired, -2 session gone, else the session.
// The origin joins field 'o' (one per line, for the user's sessions page), bounded in count and
// length so no app, however many times it redeems, can grow the record without limit.
const REDEEM = `if redis.call('DEL', KEYS[1]) == 0 then return -1 end
local x = tonumber(redis.call('HGET', KEYS[2], 'x'))
if not x then return -2 end
${LUA_NOW}
local left = x - now
if left <= 0 then redis.call('DEL', KEYS[2]) return -2 end
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(redis.call('HGET', KEYS[2], 'i')), left))
redis.call('HSET', KEYS[2], ARGV[2], '1')
local apps = redis.call('HGET', KEYS[2], 'o') or ''
if #ARGV[1] <= ${MAX_APP_ORIGIN} and not string.find('\\n' .. apps, '\\n' .. ARGV[1] .. '\\n', 1, true)
  and select(2, string.gsub(apps, '\\n', '')) < ${MAX_APPS} then
  redis.call('HSET', KEYS[2], 'o', apps .. ARGV[1] .. '\\n')
end
return redis.call('HGETALL', KEYS[2])`

interface TokenCommands {
  tesseraRedeem(tokenKey: string, session: string, audience: string, handle: string): Promise<string[] | number>
}

export type Redemption = { readonly handle: Handle; readonly session: SessionSnapshot } | 'replayed' | 'gone'

export class Tokens {
  readonly #redis: RedisClient & TokenCommands
  readonly #replication: Replication
  readonly #opts: StoreOptions

  constructor(redis: RedisClient, opts: StoreOptions) {
    if (typeof (redis as Partial<TokenCommands>).tesseraRedeem !== 'function') {
      redis.defineCommand('tesseraRedeem', { numberOfKeys: 2, lua: REDEEM })
    }
    this.#redis = redis as RedisClient & TokenCommands
    this.#replication = new Replication(redis, opts.waitReplicas ?? 0)
    this.#opts = opts
  }

  /** Records a minted token's id for `ttlMs` (replicated first, with `waitReplicas`). */
  async record(sid: string, tokenId: string, ttlMs: number): Promise<void> {
    const mark = this.#replication.mark()
    await inStore(() => this.#redis.set(keys.token(sid, tokenId), '1', 'PX', ttlMs))
    await this.#replication.confirm(mark)
  }

  /**
   * Spends token `tokenId` of session `sid` and links a new handle for `audience`. Resolves to the
   * handle and session, or to 'replayed' (used, expired or never minted) or 'gone' (session ended).
   */
  async redeem(sid: string, tokenId: string, audience: string): Promise<Redemption> {
    const handle: Handle = { sid, secret: randomId(ID_BYTES.secret) }
    const mark = this.#replication.mark()
    const reply = await inStore(() => this.#redis.tesseraRedeem(keys.token(sid, tokenId), keys.session(sid), audience, handlePlaceOf(handle, audience).field))
    if (reply === -1) return 'replayed'
    const session = typeof reply === 'number' ? undefined : toSnapshot(sid, recordOf(reply), this.#opts.identity)
    if (session === undefined) return 'gone'
    await this.#replication.confirm(mark)
    return { handle, session }
  }
}
