/**
 * A known device: a browser that has signed in as a user before carries a cookie that says so (the
 * "device cookie" of OWASP's guidance on lockout), a random nonce and a MAC over it and the user
 * name. It exempts that browser from its address's ban, so an attacker spraying passwords from a
 * shared NAT cannot lock out the colleagues who sign in there every day. It never exempts from the
 * per-user limit, and it opens nothing by itself.
 */
import { hmac, randomId, safeEqual } from '../shared/crypto.js'
import { isId } from '../shared/session.js'

const NONCE_BYTES = 16

function macOf(secret: string, nonce: string, username: string): string {
  return hmac(secret, `device|${nonce}|${username}`)
}

/** A fresh cookie value naming `username`. */
export function knownDeviceValue(secret: string, username: string): string {
  const nonce = randomId(NONCE_BYTES)
  return `${nonce}.${macOf(secret, nonce, username)}`
}

/** True when `value` was issued to a browser that signed in as `username`. */
export function isKnownDevice(secret: string, value: string | undefined, username: string): boolean {
  if (value === undefined || value.length > 128) return false
  const dot = value.indexOf('.')
  return isId(value.slice(0, dot), NONCE_BYTES) && safeEqual(value.slice(dot + 1), macOf(secret, value.slice(0, dot), username))
}
