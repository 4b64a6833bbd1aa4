/**
 * Recovery codes: 10 one-time codes shown once at enrolment, for when the authenticator is lost.
 * Each is 24 characters from a 32-letter alphabet (120 random bits): ASVS 5.0 V6.5.2 allows a plain
 * hash for lookup secrets of 112 bits or more, so each is stored as SHA-256 (with the user name),
 * and nothing can be guessed back from the hash.
 */
import { randomBytes } from 'node:crypto'
import { sha256 } from '../../shared/crypto.js'

export const RECOVERY_CODE_COUNT = 10
const LENGTH = 24
// No 0/o, 1/l: a code copied from paper should not be misread. 32 letters, so one byte & 31 is uniform.
const ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789'

/** Fresh codes, formatted for reading: `xxxxxx-xxxxxx-xxxxxx-xxxxxx`. */
export function newRecoveryCodes(count = RECOVERY_CODE_COUNT): string[] {
  const codes: string[] = []
  for (let i = 0; i < count; i++) {
    const raw = [...randomBytes(LENGTH)].map((b) => ALPHABET[b & 31] as string).join('')
    codes.push(raw.match(/.{6}/g)?.join('-') ?? raw)
  }
  return codes
}

/** The code as typed (any case, spaces and dashes dropped), when it can be one; else undefined. */
export function normaliseRecoveryCode(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined
  const code = input.toLowerCase().replace(/[\s-]+/g, '')
  return code.length === LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : undefined
}

/** What the store keeps of a code. */
export function recoveryCodeHash(username: string, normalised: string): string {
  return sha256(`rc|${username}|${normalised}`)
}

export function hashAll(username: string, codes: readonly string[]): string[] {
  return codes.map((c) => recoveryCodeHash(username, normaliseRecoveryCode(c) as string))
}
