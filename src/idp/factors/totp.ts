/**
 * TOTP (RFC 6238) with `otpauth`: SHA-1, 6 digits, 30-second steps, a code of the step before or
 * after now accepted (clock drift), each step accepted once (factor-store.ts). The secret is 160
 * random bits (RFC 4226 section 4 recommends 160), sealed at rest under FACTOR_KEYS with the user
 * name as associated data; the clear secret exists only in memory and on the enrolment page.
 */
import { Secret, TOTP } from 'otpauth'
import { renderSVG } from 'uqr'
import type { Keyring } from '../../shared/keyring.js'
import { openFactor, sealFactor } from './factor-seal.js'
import type { FactorStore } from './factor-store.js'

export const TOTP_PARAMS = { algorithm: 'SHA1', digits: 6, period: 30 } as const
/** Steps either side of now that are accepted: ±1 (30 s of clock drift each way). */
const WINDOW = 1
const SECRET_BYTES = 20

/** A new secret, base32 (what an authenticator app is given). */
export function newTotpSecret(): string {
  return new Secret({ size: SECRET_BYTES }).base32
}

/** The otpauth:// URI an authenticator app reads from the QR code. */
export function otpauthUri(secret: string, issuer: string, username: string): string {
  return new TOTP({ ...TOTP_PARAMS, issuer, label: username, secret: Secret.fromBase32(secret) }).toString()
}

/** The URI as a QR code, an SVG document rendered here (the page needs no script to show it). */
export function qrSvg(uri: string): string {
  return renderSVG(uri, { ecc: 'M', border: 2, pixelSize: 5 })
}

/** The code as typed, spaces dropped, when it is six digits; else undefined. */
export function normaliseCode(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined
  const code = input.replace(/\s+/g, '')
  return /^\d{6}$/.test(code) ? code : undefined
}

/** The time step `code` belongs to, within ±1 step of `now`; undefined when it matches none. */
export function stepOf(secret: string, code: string, now = Date.now()): number | undefined {
  const delta = TOTP.validate({ ...TOTP_PARAMS, token: code, secret: Secret.fromBase32(secret), timestamp: now, window: WINDOW })
  return delta === null ? undefined : TOTP.counter({ period: TOTP_PARAMS.period, timestamp: now }) + delta
}

export function sealTotpSecret(keyring: Keyring, username: string, secret: string): string {
  return sealFactor(keyring, 'totp', username, Buffer.from(secret))
}

export type TotpCheck = 'ok' | 'wrong' | 'not-enrolled' | 'unreadable'

/**
 * Checks a code against the user's enrolled secret and spends its step: 'ok' once per step.
 * 'unreadable': the secret does not open with FACTOR_KEYS (a key removed too soon), so nobody can
 * sign in with it until the key is back or the factor is reset: closed, never open.
 */
export async function checkTotp(store: FactorStore, keyring: Keyring | undefined, username: string, code: string, now = Date.now()): Promise<TotpCheck> {
  const stored = await store.totp(username)
  if (stored === undefined) return 'not-enrolled'
  const secret = keyring === undefined ? undefined : openFactor(keyring, 'totp', username, stored.sealed)
  if (secret === undefined) return 'unreadable'
  const step = stepOf(secret.toString(), code, now)
  if (step === undefined) return 'wrong'
  return (await store.acceptStep(username, step)) ? 'ok' : 'wrong'
}
