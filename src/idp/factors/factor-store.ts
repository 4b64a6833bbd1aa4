/**
 * A user's second factors in Redis: one hash per user (`keys.factors`), durable user data with no
 * TTL, so the Redis must persist (docs/second-factor.md). Fields:
 *
 *   totp        JSON { s: the secret sealed under FACTOR_KEYS (factor-seal.ts), c: enrolled at, ms }
 *   totp:step   the last TOTP time step accepted: a code of that step or an earlier one is refused
 *   rc:<hash>   one per unused recovery code (recovery-codes.ts): only a hash, deleted when used
 *   pk:<id>     a passkey (written by the passkeys module through `setField`)
 *
 * Every read-modify-write is one Lua script on the one key, so two requests with the same code
 * cannot both pass, and a write racing a reset does not half-survive it.
 */
import { inStore, type RedisClient } from '../../shared/redis.js'
import { keys } from '../../shared/keys.js'
import type { EnrolledFactors } from '../second-factor-policy.js'

export const FIELD = { totp: 'totp', totpStep: 'totp:step', recoveryPrefix: 'rc:', passkeyPrefix: 'pk:' } as const

export interface StoredTotp {
  /** The sealed secret. */
  readonly sealed: string
  readonly enrolledAt: number
}

// How long a used "make new recovery codes" form is remembered: longer than the page stays fresh (5 min).
const RECOVERY_FORM_TTL_MS = 60 * 60 * 1000

// Accepts a TOTP step once: only when a secret is enrolled and the step is later than the last
// one accepted (RFC 6238 section 5.2: a verifier must not accept the second attempt of an OTP).
// KEYS: factors. ARGV: step. Returns 1 accepted, 0 refused.
const ACCEPT_STEP = `if redis.call('HEXISTS', KEYS[1], 'totp') == 0 then return 0 end
local last = tonumber(redis.call('HGET', KEYS[1], 'totp:step') or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('HSET', KEYS[1], 'totp:step', ARGV[1])
return 1`

// Enrols TOTP (replacing any earlier secret) with the step its first code used, and replaces the
// recovery codes; but only once per enrolment form: its marker is set (NX) in the same script, so a
// replayed or concurrent confirmation of one form enrols nothing, and cannot put back a secret the
// user has since changed. KEYS: factors, enrolment marker. ARGV: totp JSON, step, marker TTL ms,
// recovery hashes... Returns 1 enrolled, 0 when the form was already used.
const ENROL_TOTP = `if not redis.call('SET', KEYS[2], '1', 'PX', ARGV[3], 'NX') then return 0 end
redis.call('HSET', KEYS[1], 'totp', ARGV[1], 'totp:step', ARGV[2])
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 3) == 'rc:' then redis.call('HDEL', KEYS[1], f) end
end
for i = 4, #ARGV do redis.call('HSET', KEYS[1], 'rc:' .. ARGV[i], '1') end
return 1`

// Replaces the recovery codes, only while a factor is enrolled. KEYS: factors. ARGV: hashes...
const REPLACE_RECOVERY = `local any = false
local fields = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(fields) do
  if f == 'totp' or string.sub(f, 1, 3) == 'pk:' then any = true end
end
if not any then return 0 end
for _, f in ipairs(fields) do
  if string.sub(f, 1, 3) == 'rc:' then redis.call('HDEL', KEYS[1], f) end
end
for i = 1, #ARGV do redis.call('HSET', KEYS[1], 'rc:' .. ARGV[i], '1') end
return 1`

// Removes TOTP; the recovery codes go too when no passkey is left for them to back up.
// KEYS: factors. Returns 1 when a secret was removed.
const REMOVE_TOTP = `local removed = redis.call('HDEL', KEYS[1], 'totp', 'totp:step')
local fields = redis.call('HKEYS', KEYS[1])
local passkey = false
for _, f in ipairs(fields) do if string.sub(f, 1, 3) == 'pk:' then passkey = true end end
if not passkey then
  for _, f in ipairs(fields) do if string.sub(f, 1, 3) == 'rc:' then redis.call('HDEL', KEYS[1], f) end end
end
return removed > 0 and 1 or 0`

interface FactorCommands {
  tesseraAcceptStep(key: string, step: number): Promise<number>
  tesseraEnrolTotp(...args: (string | number)[]): Promise<number>
  tesseraReplaceRecovery(...args: (string | number)[]): Promise<number>
  tesseraRemoveTotp(key: string): Promise<number>
}

export class FactorStore {
  readonly #redis: RedisClient & FactorCommands

  constructor(redis: RedisClient) {
    if (typeof (redis as Partial<FactorCommands>).tesseraAcceptStep !== 'function') {
      redis.defineCommand('tesseraAcceptStep', { numberOfKeys: 1, lua: ACCEPT_STEP })
      redis.defineCommand('tesseraEnrolTotp', { lua: ENROL_TOTP })
      redis.defineCommand('tesseraReplaceRecovery', { lua: REPLACE_RECOVERY })
      redis.defineCommand('tesseraRemoveTotp', { numberOfKeys: 1, lua: REMOVE_TOTP })
    }
    this.#redis = redis as RedisClient & FactorCommands
  }

  /** What the user has enrolled (field names only: nothing secret is read). */
  async enrolled(username: string): Promise<EnrolledFactors> {
    const fields = await inStore(() => this.#redis.hkeys(keys.factors(username)))
    return {
      totp: fields.includes(FIELD.totp),
      passkeys: fields.filter((f) => f.startsWith(FIELD.passkeyPrefix)).length,
      recoveryCodes: fields.filter((f) => f.startsWith(FIELD.recoveryPrefix)).length,
    }
  }

  async totp(username: string): Promise<StoredTotp | undefined> {
    const raw = await inStore(() => this.#redis.hget(keys.factors(username), FIELD.totp))
    if (raw === null) return undefined
    try {
      const v = JSON.parse(raw) as { s?: unknown; c?: unknown }
      return typeof v.s === 'string' && typeof v.c === 'number' ? { sealed: v.s, enrolledAt: v.c } : undefined
    } catch {
      return undefined
    }
  }

  /** Records `step` as used; false when it (or a later one) already was, or no TOTP is enrolled. */
  async acceptStep(username: string, step: number): Promise<boolean> {
    return (await inStore(() => this.#redis.tesseraAcceptStep(keys.factors(username), step))) === 1
  }

  /**
   * Enrols (or replaces) TOTP, its first code's step already used, with fresh recovery codes; false
   * (nothing written) when this enrolment (`enrolment.secret`) was confirmed before. The marker lives
   * `enrolment.ttlMs`: as long as the form could still be opened.
   */
  async enrolTotp(username: string, totp: StoredTotp, step: number, recoveryHashes: readonly string[], enrolment: { secret: string; ttlMs: number }): Promise<boolean> {
    const value = JSON.stringify({ s: totp.sealed, c: totp.enrolledAt })
    const marker = keys.enrolmentUsed(username, enrolment.secret)
    const ttl = Math.max(1, Math.ceil(enrolment.ttlMs))
    return (await inStore(() => this.#redis.tesseraEnrolTotp(2, keys.factors(username), marker, value, step, ttl, ...recoveryHashes))) === 1
  }

  async removeTotp(username: string): Promise<boolean> {
    return (await inStore(() => this.#redis.tesseraRemoveTotp(keys.factors(username)))) === 1
  }

  /**
   * Marks one rendering of the "make new recovery codes" form used: true the first time, false when
   * it is posted again (a reload, Back then Forward), which must not replace the codes just shown.
   */
  async claimRecoveryForm(username: string, once: string): Promise<boolean> {
    return (await inStore(() => this.#redis.set(keys.recoveryFormUsed(username, once), '1', 'PX', RECOVERY_FORM_TTL_MS, 'NX'))) === 'OK'
  }

  /** Replaces every recovery code; false (nothing written) when the user has no factor for them to back up. */
  async replaceRecoveryCodes(username: string, hashes: readonly string[]): Promise<boolean> {
    return (await inStore(() => this.#redis.tesseraReplaceRecovery(1, keys.factors(username), ...hashes))) === 1
  }

  /** Spends a recovery code: true once per code (HDEL answers 1 to exactly one caller). */
  async useRecoveryCode(username: string, hash: string): Promise<boolean> {
    return (await inStore(() => this.#redis.hdel(keys.factors(username), `${FIELD.recoveryPrefix}${hash}`))) === 1
  }

  /** Writes one field (the passkeys module's `pk:<id>`). */
  async setField(username: string, field: string, value: string): Promise<void> {
    await inStore(() => this.#redis.hset(keys.factors(username), field, value))
  }

  /** Every field whose name starts with `prefix`, by name. */
  async fields(username: string, prefix: string): Promise<Map<string, string>> {
    const all = await inStore(() => this.#redis.hgetall(keys.factors(username)))
    return new Map(Object.entries(all).filter(([f]) => f.startsWith(prefix)))
  }

  async deleteField(username: string, field: string): Promise<boolean> {
    return (await inStore(() => this.#redis.hdel(keys.factors(username), field))) === 1
  }

  /** Removes every factor of the user (TOTP, recovery codes, passkeys). Resolves true when there were any. */
  async reset(username: string): Promise<boolean> {
    return (await inStore(() => this.#redis.del(keys.factors(username)))) > 0
  }
}
