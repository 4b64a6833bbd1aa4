/**
 * Sign-in regulation (ASVS V6.3.1): failed passwords are counted per user name (Authelia's policy:
 * brute force at one account) and, separately and far more loosely, per client address (password
 * spraying: one password tried across many names).
 *
 * Only failures count, never right passwords; so colleagues behind one NAT, or one user signing in
 * from five devices at once, never lock each other out. Yet a burst of parallel guesses must not get
 * more passwords checked than the limit: each check first takes a slot, and a user has only
 * `maxRetries - failures` slots. A request that finds them all taken by checks still in flight
 * waits (briefly) for one to end rather than being refused: if that check fails, the ban it
 * triggers answers the waiter; if it succeeds, the waiter gets its slot.
 *
 * Each subject has its keys (`keys.regulation`): failures in the current window (TTL: find time), a
 * ban (TTL: ban time), password checks in flight (TTL: a lease, refreshed), under one hash tag per
 * subject so that a Redis Cluster spreads them over its masters.
 */
import { inStore, type RedisClient } from '../shared/redis.js'
import { keys } from '../shared/keys.js'

/** How many failures within how long ban for how long. */
export interface RegulationPolicy {
  readonly maxRetries: number
  readonly findTimeMs: number
  readonly banTimeMs: number
}

export interface RegulationConfig {
  /** Per user name: Authelia's defaults, 3 failures within 2 minutes ban for 5 minutes. */
  readonly user: RegulationPolicy
  /** Per client address: sized for an office behind one NAT. */
  readonly address: RegulationPolicy
}

// KEYS: failures, ban, in flight. ARGV: max, lease ms. Returns 0 = check (a slot is taken),
// 1 = banned, 2 = every slot is held by a check in flight.
const TAKE_SLOT = `if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(redis.call('GET', KEYS[3]) or '0')
if used >= tonumber(ARGV[1]) then return 2 end
redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 0`

// Ends a check: gives its slot back and, when the password was wrong, counts a failure, banning the
// subject once failures reach the limit; a right one clears the failures (Authelia: a success ends
// the run of failures). KEYS: failures, ban, in flight (or none). ARGV: failed (1/0), max, find ms, ban ms.
const SETTLE = `if KEYS[3] and redis.call('DECR', KEYS[3]) <= 0 then redis.call('DEL', KEYS[3]) end
if ARGV[1] == '0' then redis.call('DEL', KEYS[1]) return 0 end
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
if n >= tonumber(ARGV[2]) then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`

interface RegulationCommands {
  tesseraTakeSlot(failures: string, ban: string, inFlight: string, max: number, leaseMs: number): Promise<number>
  tesseraSettle(...args: (string | number)[]): Promise<number>
}

/** A password check that may go ahead; settle it exactly once. */
export interface Permit {
  readonly userKeys: SubjectKeys
  readonly addressKeys: SubjectKeys
}

interface SubjectKeys { readonly failures: string; readonly ban: string; readonly inFlight: string }

// A slot is held while argon2 runs (tens of ms); the lease only matters if a process dies holding one.
const LEASE_MS = 10_000
// How long a request waits for a slot before it is answered like a banned one.
const MAX_WAIT_MS = 5_000

export class Regulation {
  readonly #redis: RedisClient & RegulationCommands
  readonly #config: RegulationConfig
  readonly #scope: string

  /** @param scope prefixes every subject, so second-factor failures count apart from passwords ('' for passwords). */
  constructor(redis: RedisClient, config: RegulationConfig, scope = '') {
    const r = redis as RedisClient & Partial<RegulationCommands>
    if (typeof r.tesseraTakeSlot !== 'function') {
      redis.defineCommand('tesseraTakeSlot', { numberOfKeys: 3, lua: TAKE_SLOT })
      redis.defineCommand('tesseraSettle', { lua: SETTLE })
    }
    this.#redis = redis as RedisClient & RegulationCommands
    this.#config = config
    this.#scope = scope
  }

  /**
   * Asks to check a password for `username` from `address`. Resolves to a permit, or to 'banned'
   * (without any password check) when the user name is banned, or the address is and the browser is
   * not one that `username` has signed in with before (`knownDevice`).
   */
  async admit(username: string, address: string, knownDevice: boolean): Promise<Permit | 'banned'> {
    const userKeys = keys.regulation(`${this.#scope}user:${username}`)
    const addressKeys = keys.regulation(`${this.#scope}ip:${address}`)
    if (!knownDevice && (await inStore(() => this.#redis.exists(addressKeys.ban))) === 1) return 'banned'
    const { maxRetries } = this.#config.user
    const deadline = Date.now() + MAX_WAIT_MS
    for (let pause = 10; ; pause = Math.min(pause * 2, 100)) {
      const verdict = await inStore(() => this.#redis.tesseraTakeSlot(userKeys.failures, userKeys.ban, userKeys.inFlight, maxRetries, LEASE_MS))
      if (verdict === 0) return { userKeys, addressKeys }
      if (verdict === 1 || Date.now() + pause > deadline) return 'banned'
      // Jitter, so that waiters released together do not all retry in the same millisecond.
      await new Promise((resolve) => setTimeout(resolve, pause / 2 + Math.random() * pause))
    }
  }

  /** Ends the check a permit allowed: `ok` when the password was right. */
  async settle(permit: Permit, ok: boolean): Promise<void> {
    const { user, address } = this.#config
    const { userKeys, addressKeys } = permit
    await inStore(() => this.#redis.tesseraSettle(3, userKeys.failures, userKeys.ban, userKeys.inFlight,
      ok ? 0 : 1, user.maxRetries, user.findTimeMs, user.banTimeMs))
    // A right password does not clear the address's count: one valid account must not buy a
    // sprayer a fresh allowance.
    if (!ok) {
      await inStore(() => this.#redis.tesseraSettle(2, addressKeys.failures, addressKeys.ban,
        1, address.maxRetries, address.findTimeMs, address.banTimeMs))
    }
  }
}
