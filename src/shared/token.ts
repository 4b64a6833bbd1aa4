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
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { InvalidTokenError } from './errors.js'
import { isBase64Url } from './crypto.js'
import type { Keyring } from './keyring.js'

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
  /** Random token id (128 bits): recorded in Redis at mint, consumed at redemption. */
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

// CSPRNG bytes are drawn 4 KB at a time and handed out in slices, each byte used once: a call to
// randomBytes costs about as much as encrypting the token, so pooling halves the mint's overhead
// (oidc-provider's nanoid pools its random bytes the same way).
const POOL_BYTES = 4096
let pool = Buffer.alloc(0)
let poolOffset = 0

function takeRandom(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    pool = randomBytes(POOL_BYTES)
    poolOffset = 0
  }
  const out = pool.subarray(poolOffset, poolOffset + n)
  poolOffset += n
  return out
}

const aad = (kid: string, audience: string): Buffer => Buffer.from(`${VERSION}.${kid}.${audience}`)

export function mintToken(
  keyring: Keyring,
  input: { sid: string; aud: string; st: string; ttlSeconds: number; now?: number },
): { token: string; claims: TokenClaims } {
  const iat = Math.floor((input.now ?? Date.now()) / 1000)
  const random = takeRandom(IV_BYTES + JTI_BYTES)
  const iv = random.subarray(0, IV_BYTES) // fresh per token: reusing an IV under one key breaks GCM
  const claims: TokenClaims = {
    sid: input.sid, aud: input.aud, st: input.st, iat, exp: iat + input.ttlSeconds,
    jti: random.subarray(IV_BYTES).toString('base64url'),
  }
  const { id, key } = keyring.current
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  cipher.setAAD(aad(id, input.aud))
  const body = Buffer.concat([cipher.update(JSON.stringify(claims), 'utf8'), cipher.final()])
  const token = [VERSION, id, iv.toString('base64url'), body.toString('base64url'),
    cipher.getAuthTag().toString('base64url')].join('.')
  return { token, claims }
}

/**
 * Opens a token meant for `audience`. Checks form, key id, authenticity, claims and the expiry
 * backstop; single use and the real expiry are the session store's job.
 * @throws InvalidTokenError for every failure, with the reason only in `detail`.
 */
export function openToken(keyring: Keyring, token: string, audience: string, now = Date.now()): TokenClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw new InvalidTokenError('too long')
  const parts = token.split('.')
  if (parts.length !== 5 || parts[0] !== VERSION) throw new InvalidTokenError('malformed')
  const [, kid, ivText, bodyText, tagText] = parts as [string, string, string, string, string]
  const entry = keyring.byId.get(kid)
  if (entry === undefined) throw new InvalidTokenError('unknown key id')
  if (!isBase64Url(ivText) || !isBase64Url(bodyText) || !isBase64Url(tagText)) {
    throw new InvalidTokenError('not base64url')
  }
  const iv = Buffer.from(ivText, 'base64url')
  const tag = Buffer.from(tagText, 'base64url')
  const body = Buffer.from(bodyText, 'base64url')
  // Only the canonical encoding is accepted: the last character's spare bits must be zero, so one
  // token has exactly one spelling (found by the fuzz test: a changed final character decoded the same).
  if (iv.toString('base64url') !== ivText || tag.toString('base64url') !== tagText || body.toString('base64url') !== bodyText) {
    throw new InvalidTokenError('not canonical base64url')
  }
  // GCM accepts short tags unless authTagLength is pinned; check lengths before any crypto.
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new InvalidTokenError('bad lengths')
  let plain: string
  try {
    const decipher = createDecipheriv('aes-256-gcm', entry.key, iv, { authTagLength: TAG_BYTES })
    decipher.setAAD(aad(kid, audience))
    decipher.setAuthTag(tag)
    plain = Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
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
