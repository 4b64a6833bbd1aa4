/** Small crypto primitives shared by both sides: CSPRNG ids, keyed MACs, constant-time compares. */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** A random base64url string of `bytes` bytes from the CSPRNG (16 bytes = 128 bits). */
export function randomId(bytes = 16): string {
  return randomBytes(bytes).toString('base64url')
}

export function hmac(key: string | Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('base64url')
}

export function sha256(message: string): string {
  return createHash('sha256').update(message).digest('base64url')
}

/** Constant-time string compare; unequal lengths return false without calling timingSafeEqual (it throws). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}

const B64URL = /^[A-Za-z0-9_-]+$/

/** True when `s` is unpadded base64url; Buffer.from(s, 'base64url') silently skips bad characters otherwise. */
export function isBase64Url(s: string): boolean {
  return B64URL.test(s)
}
