/**
 * The one-time use of hand-over tokens: a minted token's id is recorded with the token's TTL, and
 * redeeming deletes it and links a new handle for the app, atomically (key layout: keys.ts).
 */
import { inStore, type RedisClient } from './redis.js'
import { randomId } from './crypto.js'
import { handlePlaceOf, keys } from './keys.js'
import { Replication } from './replication.js'
import { LUA_NOW, LUA_SESSION_REPLY, fieldOf, toSnapshot, type StoreOptions } from './sessions.js'
import { ID_BYTES, type Handle, type SessionSnapshot } from './session.js'

/** The most app origins one session records, and the longest origin it records. */
export const MAX_APPS = 32
export const MAX_APP_ORIGIN = 256
/**
 * The most handles one session keeps for one app: the newest. A browser holds one cookie per app,
 * so an older handle is one its browser has already replaced (it lost its cookie and was handed over
 * again); a few are kept for hand-overs racing in several tabs. Without a bound, every hand-over
 * would grow the session hash that each page view reads whole.
 */
export const MAX_HANDLES_PER_APP = 4

// Of two racing redemptions exactly one sees DEL return 1. KEYS: token id, session. ARGV: the app's
// origin, the new handle's field, the field listing the app's handles (oldest first, at most
// MAX_HANDLES_PER_APP: the oldest is deleted). Returns -1 replayed or expired, -2 session gone, else the session's reply.
// The origin joins field 'o' (one per line, for the user's sessions page), bounded in count and
// length so no app, however many times it redeems, can grow the record without limit.
const REDEEM = `${LUA_SESSION_REPLY}
if redis.call('DEL', KEYS[1]) == 0 then return -1 end
local x = tonumber(redis.call('HGET', KEYS[2], 'x'))
if not x then return -2 end
${LUA_NOW}
local left = x - now
if left <= 0 then redis.call('DEL', KEYS[2]) return -2 end
redis.call('PEXPIRE', KEYS[2], math.min(tonumber(redis.call('HGET', KEYS[2], 'i')), left))
local kept = {}
for f in string.gmatch(redis.call('HGET', KEYS[2], ARGV[3]) or '', '%S+') do kept[#kept + 1] = f end
kept[#kept + 1] = ARGV[2]
while #kept > ${MAX_HANDLES_PER_APP} do redis.call('HDEL', KEYS[2], table.remove(kept, 1)) end
redis.call('HSET', KEYS[2], ARGV[2], '1', ARGV[3], table.concat(kept, ' '))
local apps = redis.call('HGET', KEYS[2], 'o') or ''
if #ARGV[1] <= ${MAX_APP_ORIGIN} and not string.find('\\n' .. apps, '\\n' .. ARGV[1] .. '\\n', 1, true)
  and select(2, string.gsub(apps, '\\n', '')) < ${MAX_APPS} then
  redis.call('HSET', KEYS[2], 'o', apps .. ARGV[1] .. '\\n')
end
return session_reply(KEYS[2])`

interface TokenCommands {
  tesseraRedeem(tokenKey: string, session: string, audience: string, handle: string, handles: string): Promise<string[] | number>
}

/** A redemption's new handle and session, and the idle timeout REDEEM has just set the session's TTL to. */
export type Redemption = { readonly handle: Handle; readonly session: SessionSnapshot; readonly idleMs: number } | 'replayed' | 'gone'

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

  /** Whether token `tokenId` of session `sid` was minted and is neither spent nor expired (nothing changes). */
  async isUnspent(sid: string, tokenId: string): Promise<boolean> {
    return (await inStore(() => this.#redis.exists(keys.token(sid, tokenId)))) === 1
  }

  /**
   * Spends token `tokenId` of session `sid` and links a new handle for `audience`. Resolves to the
   * handle and session, or to 'replayed' (used, expired or never minted) or 'gone' (session ended).
   */
  async redeem(sid: string, tokenId: string, audience: string): Promise<Redemption> {
    const handle: Handle = { sid, secret: randomId(ID_BYTES.secret) }
    const mark = this.#replication.mark()
    const reply = await inStore(() => this.#redis.tesseraRedeem(keys.token(sid, tokenId), keys.session(sid), audience, handlePlaceOf(handle, audience).field, keys.handlesOf(audience)))
    if (reply === -1) return 'replayed'
    const session = typeof reply === 'number' ? undefined : toSnapshot(sid, reply, this.#opts.identity)
    if (session === undefined) return 'gone'
    await this.#replication.confirm(mark)
    return { handle, session, idleMs: Number(fieldOf(reply as string[], 'i')) }
  }
}
