/**
 * The hand-over token: how the IdP tells a remote app "this browser owns session S", once.
 *
 * Wire format (all parts unpadded base64url except the version and key id):
 *
 *   v1.<kid>.<iv>.<ciphertext>.<tag>
 *
 * AES-256-GCM with a random 96-bit IV and a 128-bit tag. The associated data is
 * `v1.<kid>.<audience origin>`, so a token sealed for one app fails authentication at any other,
 * and the key id cannot be swapped. The plaintext is JSON {@link TokenClaims}.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { InvalidTokenError } from './errors.js'
import { randomBytesPooled } from './crypto.js'
import type { KeyObject } from 'node:crypto'

export interface TokenClaims {
  /** Shared session id. */
  readonly sid: string
  /** The remote origin the token was minted for. */
  readonly aud: string
  /** The browser-bound state the remote set in its state cookie. */
  readonly st: string
  /** Issued at / expires at, epoch seconds. */
  readonly iat: number
  readonly exp: number
  /** The token id: 128 random bits, recorded in Redis at mint, spent at redemption (`jti` on the wire). */
  readonly jti: string
}

const VERSION = 'v1'
const IV_BYTES = 12
const TAG_BYTES = 16
const JTI_BYTES = 16 // 128 bits
// Largest token we ever mint is well under 1 KB; anything bigger is refused before any crypto.
export const MAX_TOKEN_LENGTH = 2048
/** Clocks of the IdP and the apps may differ; Redis's TTL is the real expiry, this is a backstop. */
const CLOCK_TOLERANCE_S = 60

// One associated-data buffer per (key id, audience). Audiences are the IdP's allow-listed origins at
// mint and the app's own origin at open, so the cache stays small; it is cleared if it ever is not.
const AAD_CACHE_MAX = 256
const aadCache = new Map<string, Buffer>()
function aad(kid: string, audience: string): Buffer {
  const cacheKey = `${kid}.${audience}`
  let buf = aadCache.get(cacheKey)
  if (buf === undefined) {
    if (aadCache.size >= AAD_CACHE_MAX) aadCache.clear()
    buf = Buffer.from(`${VERSION}.${cacheKey}`)
    aadCache.set(cacheKey, buf)
  }
  return buf
}

/** Seals a token with `key`: the audience's own token key (app-keys.ts), under its key id. */
export function mintToken(
  key: { readonly id: string; readonly key: KeyObject },
  input: { sid: string; aud: string; st: string; ttlSeconds: number; now?: number },
): { token: string; claims: TokenClaims } {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  const random = randomBytesPooled(IV_BYTES + JTI_BYTES)
  const iv = random.subarray(0, IV_BYTES) // fresh per token: reusing an IV under one key breaks GCM
  const claims: TokenClaims = {
    sid: input.sid, aud: input.aud, st: input.st, iat, exp: iat + input.ttlSeconds,
    jti: random.subarray(IV_BYTES).toString('base64url'),
  }
  const { id } = key
  const cipher = createCipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad(id, input.aud))
  const body = cipher.update(JSON.stringify(claims), 'utf8')
  cipher.final() // GCM is a stream mode: final() adds no bytes, it computes the tag
  const token = `${VERSION}.${id}.${iv.toString('base64url')}.${body.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`
  return { token, claims }
}

// The whole shape in one pass: version, key id, a 12-byte IV (16 characters, no spare bits), the
// ciphertext, and a 16-byte tag (22 characters; the last one carries 4 spare bits, which must be
// zero, so it is one of A, Q, g, w). Only canonical base64url opens, so a token has exactly one
// spelling (the fuzz test found a changed final character that decoded to the same bytes).
const TOKEN_SHAPE = new RegExp(`^${VERSION}\\.([A-Za-z0-9_-]{1,32})\\.([A-Za-z0-9_-]{16})\\.([A-Za-z0-9_-]+)\\.([A-Za-z0-9_-]{21}[AQgw])$`)

/**
 * Opens a token meant for `audience`. Checks form, key id, authenticity, claims and the expiry
 * backstop; single use and the real expiry are the session store's job.
 * @throws InvalidTokenError for every failure, with the reason only in `detail`.
 */
export function openToken(keyFor: (kid: string) => KeyObject | undefined, token: string, audience: string, now = Date.now()): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('too long')
  const m = TOKEN_SHAPE.exec(token)
  if (m === null) throw new InvalidTokenError('malformed')
  const [, kid, ivText, bodyText, tagText] = m as unknown as [string, string, string, string, string]
  const key = keyFor(kid)
  if (key === undefined) throw new InvalidTokenError('unknown key id')
  const body = Buffer.from(bodyText, 'base64url')
  if (body.toString('base64url') !== bodyText) throw new InvalidTokenError('not canonical base64url')
  let plain: string
  try {
    // authTagLength pinned: GCM would otherwise accept a short tag.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(ivText, 'base64url'), { authTagLength: TAG_BYTES })
    decipher.setAAD(aad(kid, audience))
    decipher.setAuthTag(Buffer.from(tagText, 'base64url'))
    const out = decipher.update(body)
    decipher.final() // throws unless the tag authenticates the ciphertext, key id and audience
    plain = out.toString('utf8')
  } catch (cause) {
    throw new InvalidTokenError('authentication failed', cause)
  }
  const claims = parseClaims(plain)
  if (claims.aud !== audience) throw new InvalidTokenError('audience mismatch')
  const nowS = now / 1000
  if (claims.exp + CLOCK_TOLERANCE_S < nowS || claims.iat - CLOCK_TOLERANCE_S > nowS) {
    throw new InvalidTokenError('expired or not yet valid')
  }
  return claims
}

function parseClaims(plain: string): TokenClaims {
  let value: unknown
  try {
    value = JSON.parse(plain)
  } catch (cause) {
    throw new InvalidTokenError('claims are not JSON', cause)
  }
  const c = value as Record<string, unknown> | null
  if (
    c === null || typeof c !== 'object' ||
    typeof c.sid !== 'string' || typeof c.aud !== 'string' || typeof c.st !== 'string' ||
    typeof c.jti !== 'string' || typeof c.iat !== 'number' || typeof c.exp !== 'number'
  ) {
    throw new InvalidTokenError('claims have the wrong shape')
  }
  return c as unknown as TokenClaims
}
