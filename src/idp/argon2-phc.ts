/**
 * argon2id PHC strings, checked when the users file loads, so that no request meets a hash argon2
 * cannot use (it would throw per request: a 500 for one kind of name and a 401 for the other).
 */
import { hashSync } from '@node-rs/argon2'
import { randomId } from '../shared/crypto.js'

export interface Argon2Costs {
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
}

/**
 * What a users file may hold. Argon2 itself needs t ≥ 1, p ≥ 1 and m ≥ 8 KiB per lane; the upper
 * bounds stop a typo from making each sign-in take gigabytes or minutes. 2 GiB, t=1, p=4 is RFC
 * 9106's first recommended setting; OWASP's range runs m=7-46 MiB, t=1-5. Salts of 8 bytes or
 * more (RFC 9106 recommends 16) and digests of 16 bytes or more, as Authelia and this CLI write.
 */
const MAX_MEMORY_KIB = 2 * 1024 * 1024
const MAX_TIME = 32
const MAX_LANES = 64
const PHC = /^\$argon2id\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,10})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$/

/** OWASP's minimum, what `tessera hash-password` writes (and the dummy hash's costs should no user's be known). */
export const DEFAULT_COSTS: Argon2Costs = Object.freeze({ memoryCost: 19456, timeCost: 2, parallelism: 1 })

/** The costs of an argon2id (v=19) PHC string, or a sentence saying why argon2 cannot or should not use it. */
export function parseArgon2id(phc: string): Argon2Costs | string {
  const m = PHC.exec(phc)
  if (m === null) return 'must be an argon2id PHC string, $argon2id$v=19$m=…,t=…,p=…$salt$hash (npx tessera hash-password)'
  const [memoryCost, timeCost, parallelism] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (parallelism < 1 || parallelism > MAX_LANES) return `p=${parallelism}: parallelism must be 1 to ${MAX_LANES}`
  if (timeCost < 1 || timeCost > MAX_TIME) return `t=${timeCost}: time cost must be 1 to ${MAX_TIME}`
  if (memoryCost < 8 * parallelism || memoryCost > MAX_MEMORY_KIB) return `m=${memoryCost}: memory must be 8 KiB per lane (${8 * parallelism}) to ${MAX_MEMORY_KIB} KiB`
  if (base64Bytes(m[4] as string) < 8) return 'the salt must be at least 8 bytes'
  if (base64Bytes(m[5] as string) < 16) return 'the digest must be at least 16 bytes'
  return { memoryCost, timeCost, parallelism }
}

/** Bytes encoded by unpadded base64 text, or 0 when no valid encoding has this length. */
function base64Bytes(text: string): number {
  return text.length % 4 === 1 ? 0 : Math.floor((text.length * 3) / 4)
}

/**
 * OWASP's Password Storage Cheat Sheet lists equivalent argon2id settings from m=47104 KiB, t=1 to
 * m=7168 KiB, t=5; all spend about m·t ≥ 36 MiB·passes. Weaker hashes are refused in production.
 */
export function meetsOwaspCosts(c: Argon2Costs): boolean {
  return c.memoryCost >= 7168 && c.memoryCost * c.timeCost >= 35_840
}

/**
 * A hash of a random password with `costs`, which unknown names are checked against so they cost
 * the same argon2 work as known ones. Made once, at load: the costs are checked, so it cannot fail.
 */
export function makeDummyHash(costs: Argon2Costs): string {
  return hashSync(randomId(32), costs)
}
