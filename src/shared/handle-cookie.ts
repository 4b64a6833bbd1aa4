/**
 * The session cookie's value: `<sid>.<secret>.<mac>`, the MAC keyed with the app's session secret
 * and bound to its audience. A forged, truncated or other app's cookie is rejected here, before it
 * costs a Redis round trip; the store's hashed handle key is the real check.
 */
import { hmac, safeEqual } from './crypto.js'
import { SessionStore, type Handle } from './session-store.js'

const MAC_LENGTH = 22 // 128 bits of HMAC-SHA256, base64url

const macOf = (secretKey: string, audience: string, sid: string, secret: string): string =>
  hmac(secretKey, `cookie|${audience}|${sid}.${secret}`).slice(0, MAC_LENGTH)

export function encodeHandle(handle: Handle, secretKey: string, audience: string): string {
  return `${handle.sid}.${handle.secret}.${macOf(secretKey, audience, handle.sid, handle.secret)}`
}

/** The handle in a cookie value, or undefined for anything malformed or not signed by us for `audience`. */
export function decodeHandle(value: string | undefined, secretKey: string, audience: string): Handle | undefined {
  if (value === undefined || value.length > 128) return undefined
  const parts = value.split('.')
  if (parts.length !== 3) return undefined
  const [sid, secret, mac] = parts as [string, string, string]
  const handle = { sid, secret }
  if (!SessionStore.isWellFormed(handle)) return undefined
  return safeEqual(mac, macOf(secretKey, audience, sid, secret)) ? handle : undefined
}
