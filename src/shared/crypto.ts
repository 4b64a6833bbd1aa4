/** Small crypto primitives shared by both sides: CSPRNG ids, keyed MACs, constant-time compares. */
import { createHmac, hash, randomBytes, timingSafeEqual } from 'node:crypto'

// CSPRNG bytes are drawn 4 KB at a time and handed out in slices, each byte used once. On this
// project's 2-core bench machine one randomBytes(16) call costs 7 µs (OpenSSL 3's RAND_bytes path),
// as much as a whole AES-GCM encryption, while a 4 KB draw costs 10 µs: the profile of a sign-in
// redirect showed 20% of the app's CPU in randomFillSync before pooling. Node's randomUUID and
// nanoid pool the same way. The pool lives only in this process's memory, like the keys.
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let poolOffset = 0

/** `n` (at most 4096) fresh bytes from the CSPRNG. The slice is never handed out again; do not keep it past use if it is secret. */
export function randomBytesPooled(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    pool = randomBytes(POOL_BYTES)
    poolOffset = 0
  }
  const out = pool.subarray(poolOffset, poolOffset + n)
  poolOffset += n
  return out
}

/** A random base64url string of `bytes` bytes from the CSPRNG (16 bytes = 128 bits). */
export function randomId(bytes = 16): string {
  return randomBytesPooled(bytes).toString('base64url')
}

export function hmac(key: string | Buffer, message: string): string {
  return createHmac('sha256', key).update(message).digest('base64url')
}

export function sha256(message: string): string {
  // The one-shot hash: about half the CPU of createHash().update().digest() for a short message.
  return hash('sha256', message, 'base64url')
}

/** Constant-time string compare; unequal lengths return false without calling timingSafeEqual (it throws). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  return x.length === y.length && timingSafeEqual(x, y)
}
