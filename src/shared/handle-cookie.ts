/**
 * The session cookie's value: `<sid>.<secret>.<mac>`, the MAC keyed with the app's session secret
 * and bound to its audience. A forged, truncated or other app's cookie is rejected here, before it
 * costs a Redis round trip; the handle's hashed field in the session is the real check.
 */
import { BoundedMemo } from './bounded-memo.js'
import { hmac, safeEqual } from './crypto.js'
import { ID_BYTES, isId, isWellFormedHandle, type Handle } from './session.js'

const MAC_LENGTH = 22 // 128 bits of HMAC-SHA256, base64url

const macOf = (secretKey: string, audience: string, sid: string, secret: string): string =>
  hmac(secretKey, `cookie|${audience}|${sid}.${secret}`).slice(0, MAC_LENGTH)

/**
 * The session id a cookie value claims, unverified: the IdP mints a token while the store confirms
 * the handle in the same round trip, and a token for a claim that does not verify is never sent.
 */
export function claimedSid(value: string | undefined): string | undefined {
  const dot = value?.indexOf('.') ?? -1
  const sid = value?.slice(0, dot)
  return dot > 0 && isId(sid, ID_BYTES.sid) ? sid : undefined
}

/** The cookie value for `handle`; remembered as verified, since its MAC was made here (see `verified`). */
export function encodeHandle(handle: Handle, secretKey: string, audience: string): string {
  const value = `${handle.sid}.${handle.secret}.${macOf(secretKey, audience, handle.sid, handle.secret)}`
  verified.set(value, { secretKey, audience, handle })
  return value
}

// Cookie values whose MAC verified (or that were made here), remembered: a signed-in browser sends
// the same cookie on every request, and the HMAC behind it was about a tenth of an app's CPU per page
// view. Only values that verified are kept (forged cookies cannot fill it), it is bounded (the older
// half dropped when full: bounded-memo.ts), and it is a pure memo: whether the session still exists
// is asked of Redis on every request all the same.
const VERIFIED_MAX = 10_000
const verified = new BoundedMemo<string, { readonly secretKey: string; readonly audience: string; readonly handle: Handle }>(VERIFIED_MAX)

/**
 * The handle in a cookie value, or undefined for anything malformed or not signed by us for `audience`.
 * The same value returns the same Handle object while it is remembered.
 */
export function decodeHandle(value: string | undefined, secretKey: string, audience: string): Handle | undefined {
  if (value === undefined || value.length > 128) return undefined
  const known = verified.get(value)
  if (known !== undefined && known.secretKey === secretKey && known.audience === audience) return known.handle
  const parts = value.split('.')
  if (parts.length !== 3) return undefined
  const [sid, secret, mac] = parts as [string, string, string]
  const handle: Handle = { sid, secret }
  if (!isWellFormedHandle(handle)) return undefined
  if (!safeEqual(mac, macOf(secretKey, audience, sid, secret))) return undefined
  verified.set(value, { secretKey, audience, handle })
  return handle
}
