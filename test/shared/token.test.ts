import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createCipheriv, randomBytes } from 'node:crypto'
import { InvalidTokenError } from '../../src/shared/errors.js'
import type { Keyring } from '../../src/shared/keyring.js'
import { keyringOf as keyring } from '../helpers/sync-keys.js'
import { MAX_TOKEN_LENGTH, mintToken, openToken } from '../../src/shared/token.js'

/** Opens with the keyring's raw keys: these tests are about the token format, not key derivation. */
const opener = (kr: Keyring) => (kid: string) => kr.byId.get(kid)?.key

const AUD = 'https://app.example.com'
const OTHER_AUD = 'https://other.example.com'
const GENERIC_MESSAGE = 'This sign-in link is invalid or has expired.'

const material = (): string => randomBytes(32).toString('base64url')

const ring = keyring(`k1:${material()}`)

function mint(kr: Keyring = ring, over: Partial<{ sid: string; aud: string; st: string; ttlSeconds: number; now: number }> = {}) {
  return mintToken(kr.current, { sid: 'AAAAAAAAAAAAAAAAAAAAAA', aud: AUD, st: 'state-'.padEnd(43, 'x'), ttlSeconds: 10, ...over })
}

/** Asserts `fn` throws an InvalidTokenError (403, the one generic message) and returns its detail. */
function assertInvalid(fn: () => unknown, what: string): string | undefined {
  let caught: unknown
  try {
    fn()
  } catch (err) {
    caught = err
  }
  assert.ok(caught !== undefined, `${what}: accepted, expected InvalidTokenError`)
  assert.ok(caught instanceof InvalidTokenError, `${what}: threw ${String(caught)}, expected InvalidTokenError`)
  assert.strictEqual(caught.code, 'TESSERA_ERR_INVALID_TOKEN', what)
  assert.strictEqual(caught.statusCode, 403, what)
  assert.strictEqual(caught.message, GENERIC_MESSAGE, `${what}: the message must not say why`)
  return caught.detail
}

/** Splits a token into its five wire parts. */
function parts(token: string): [string, string, string, string, string] {
  const p = token.split('.')
  assert.strictEqual(p.length, 5)
  return p as [string, string, string, string, string]
}

/** Seals any plaintext in the v1 wire format with `kr`'s current key, as mintToken would (to test claim checks). */
function seal(kr: Keyring, plaintext: string, aadAudience: string): string {
  const { id, key } = kr.current
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 16 })
  cipher.setAAD(Buffer.from(`v1.${id}.${aadAudience}`))
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return ['v1', id, iv.toString('base64url'), body.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.')
}

test('round trip: a minted token opens to the same claims', () => {
  const now = Date.UTC(2030, 0, 1, 12, 0, 0)
  const { token, claims } = mint(ring, { sid: 'sid_sid_sid_sid_sid_s1', st: 'st', ttlSeconds: 10, now })
  const [v, kid, iv, body, tag] = parts(token)
  assert.strictEqual(v, 'v1')
  assert.strictEqual(kid, 'k1')
  assert.strictEqual(Buffer.from(iv, 'base64url').length, 12)
  assert.strictEqual(Buffer.from(tag, 'base64url').length, 16)
  assert.ok(body.length > 0)
  assert.ok(!token.includes('sid_sid'), 'the sid is not readable in the token')
  assert.strictEqual(claims.iat, now / 1000)
  assert.strictEqual(claims.exp, now / 1000 + 10)
  assert.match(claims.jti, /^[A-Za-z0-9_-]{22}$/)
  assert.deepStrictEqual(openToken(opener(ring), token, AUD, now), claims)
  assert.deepStrictEqual({ ...claims }, { sid: 'sid_sid_sid_sid_sid_s1', aud: AUD, st: 'st', iat: claims.iat, exp: claims.exp, jti: claims.jti })
  assert.ok(token.length < MAX_TOKEN_LENGTH)
})

test('round trip with the default clock', () => {
  const { token, claims } = mint()
  assert.deepStrictEqual(openToken(opener(ring), token, AUD), claims)
})

test('two mints of the same input differ in iv, ciphertext and jti', () => {
  const a = mint()
  const b = mint()
  assert.notStrictEqual(a.token, b.token)
  assert.notStrictEqual(a.claims.jti, b.claims.jti)
  assert.notStrictEqual(parts(a.token)[2], parts(b.token)[2], 'a fresh IV per token')
})

test('garbage strings are rejected', () => {
  const garbage = [
    'x', '.', '....', '.....', '......', 'v1', 'v1.k1', 'v1.k1.a.b', 'v1.k1.a.b.c', 'v1.k1.a.b.c.d',
    'v2.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA', 'V1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA', 'v1.k1.AAAAAAAAAAAAAAAA..AAAAAAAAAAAAAAAAAAAAAA',
    'v1.k1...', 'v1..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA', 'null', 'undefined', '{}', '[]', '0',
    'v1.k1.AAAAAAAAAAAAAAAA.AA AA.AAAAAAAAAAAAAAAAAAAAAA', 'v1.k1.AAAAAAAAAAAAAAAA.AA%41.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA\n', ' v1.k1.AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA',
    'v1.k1.ÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄÄ.AAAA.AAAAAAAAAAAAAAAAAAAAAA', '\u0000', 'v1.k1.\u0000.\u0000.\u0000',
    randomBytes(64).toString('base64url'), randomBytes(64).toString('hex'),
  ]
  for (const g of garbage) assertInvalid(() => openToken(opener(ring), g, AUD), JSON.stringify(g))
})

test('an empty token is rejected', () => {
  assertInvalid(() => openToken(opener(ring), '', AUD), 'empty')
})

test('a token with an extra or a missing part is rejected', () => {
  const { token } = mint()
  const p = parts(token)
  assertInvalid(() => openToken(opener(ring), `${token}.AAAA`, AUD), 'extra part')
  assertInvalid(() => openToken(opener(ring), `${token}.`, AUD), 'trailing dot')
  assertInvalid(() => openToken(opener(ring), p.slice(0, 4).join('.'), AUD), 'no tag')
  assertInvalid(() => openToken(opener(ring), [p[0], p[1], p[3], p[4]].join('.'), AUD), 'no iv')
  assertInvalid(() => openToken(opener(ring), [p[0], p[1], p[2], p[4]].join('.'), AUD), 'no ciphertext')
  assertInvalid(() => openToken(opener(ring), [p[0], p[1], p[2], '', p[4]].join('.'), AUD), 'empty ciphertext')
})

test('every truncation of a token is rejected', () => {
  const { token } = mint()
  for (let n = 0; n < token.length; n++) assertInvalid(() => openToken(opener(ring), token.slice(0, n), AUD), `first ${n} chars`)
  // Cutting characters out of the middle of each encrypted part, keeping the rest intact.
  const p = parts(token)
  for (const i of [2, 3, 4] as const) {
    for (const cut of [1, 2, 4, 8]) {
      const q = [...p]
      q[i] = (q[i] as string).slice(0, -cut)
      if (q[i] === '') continue
      assertInvalid(() => openToken(opener(ring), q.join('.'), AUD), `part ${i} minus ${cut} chars`)
    }
  }
})

test('a short GCM tag is rejected', () => {
  const { token } = mint()
  const p = parts(token)
  const tag = Buffer.from(p[4], 'base64url')
  // A truncated GCM tag would verify if the decipher accepted it: 4 bytes must be refused, as every other short length.
  for (const len of [0, 1, 4, 8, 12, 13, 14, 15]) {
    const short = [p[0], p[1], p[2], p[3], tag.subarray(0, len).toString('base64url')].join('.')
    assertInvalid(() => openToken(opener(ring), short, AUD), `tag of ${len} bytes`)
  }
  const long = [p[0], p[1], p[2], p[3], Buffer.concat([tag, Buffer.from([0])]).toString('base64url')].join('.')
  assertInvalid(() => openToken(opener(ring), long, AUD), 'tag of 17 bytes')
})

test('an IV of the wrong length is rejected', () => {
  const { token } = mint()
  const p = parts(token)
  const iv = Buffer.from(p[2], 'base64url')
  for (const bad of [iv.subarray(0, 8), iv.subarray(0, 11), Buffer.concat([iv, Buffer.from([0])]), Buffer.concat([iv, iv])]) {
    assertInvalid(() => openToken(opener(ring), [p[0], p[1], bad.toString('base64url'), p[3], p[4]].join('.'), AUD), `iv of ${bad.length} bytes`)
  }
})

test('a token minted under another key with the same key id is rejected', () => {
  const other = keyring(`k1:${material()}`)
  const { token } = mint(other)
  assertInvalid(() => openToken(opener(ring), token, AUD), 'wrong key')
  // And the other way round.
  assertInvalid(() => openToken(opener(other), mint(ring).token, AUD), 'wrong key, reversed')
})

test('a token with an unknown key id is rejected', () => {
  const other = keyring(`k9:${material()}`)
  assertInvalid(() => openToken(opener(ring), mint(other).token, AUD), 'unknown kid')
  const p = parts(mint().token)
  for (const kid of ['k2', 'K1', 'k1 ', '', 'k1k1', '__proto__', 'constructor', 'toString']) {
    assertInvalid(() => openToken(opener(ring), [p[0], kid, p[2], p[3], p[4]].join('.'), AUD), `kid ${JSON.stringify(kid)}`)
  }
})

test('a flipped bit anywhere in the iv, the ciphertext or the tag is rejected', () => {
  const { token } = mint()
  const p = parts(token)
  let tried = 0
  for (const i of [2, 3, 4] as const) {
    const original = Buffer.from(p[i], 'base64url')
    for (let byte = 0; byte < original.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const flipped = Buffer.from(original)
        flipped[byte] = (flipped[byte] as number) ^ (1 << bit)
        const q = [...p]
        q[i] = flipped.toString('base64url')
        assertInvalid(() => openToken(opener(ring), q.join('.'), AUD), `part ${i} byte ${byte} bit ${bit}`)
        tried++
      }
    }
  }
  const bytes = [2, 3, 4].reduce((n, i) => n + Buffer.from(p[i] as string, 'base64url').length, 0)
  assert.strictEqual(tried, bytes * 8)
  // The untouched token still opens: the failures above come from the flips alone.
  assert.strictEqual(openToken(opener(ring), token, AUD).aud, AUD)
})

test('a token for another audience is rejected', () => {
  const { token } = mint(ring, { aud: OTHER_AUD })
  assert.strictEqual(openToken(opener(ring), token, OTHER_AUD).aud, OTHER_AUD)
  for (const aud of [AUD, `${OTHER_AUD}/`, 'https://OTHER.example.com', 'http://other.example.com', 'https://other.example.com:443', '']) {
    assertInvalid(() => openToken(opener(ring), token, aud), `audience ${aud}`)
  }
})

test('claims whose aud differs from the sealed audience are rejected', () => {
  const claims = { sid: 's', aud: OTHER_AUD, st: 'st', iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 10, jti: 'j' }
  const token = seal(ring, JSON.stringify(claims), AUD)
  assert.strictEqual(assertInvalid(() => openToken(opener(ring), token, AUD), 'aud mismatch'), 'audience mismatch')
})

test('authentic plaintext that is not well-formed claims is rejected', () => {
  const now = Math.floor(Date.now() / 1000)
  const good = { sid: 's', aud: AUD, st: 'st', iat: now, exp: now + 10, jti: 'j' }
  assert.deepStrictEqual(openToken(opener(ring), seal(ring, JSON.stringify(good), AUD), AUD), good, 'the helper seals like mintToken')
  const bad: string[] = [
    '', 'not json', '{', 'null', '0', '"claims"', '[]', 'true', '{}',
    JSON.stringify({ ...good, sid: 1 }), JSON.stringify({ ...good, aud: null }), JSON.stringify({ ...good, st: undefined }),
    JSON.stringify({ ...good, iat: String(now) }), JSON.stringify({ ...good, exp: String(now + 10) }), JSON.stringify({ ...good, jti: ['j'] }),
    JSON.stringify([good]),
  ]
  for (const plain of bad) assertInvalid(() => openToken(opener(ring), seal(ring, plain, AUD), AUD), `plaintext ${JSON.stringify(plain)}`)
})

test('a token expired beyond the 60 s tolerance is rejected; within it, accepted', () => {
  const mintedAt = Date.UTC(2030, 5, 1)
  const { token, claims } = mint(ring, { ttlSeconds: 10, now: mintedAt })
  assert.strictEqual(openToken(opener(ring), token, AUD, mintedAt + 9_000).jti, claims.jti)
  assert.strictEqual(openToken(opener(ring), token, AUD, (claims.exp + 59) * 1000).jti, claims.jti, 'inside the clock tolerance')
  assert.strictEqual(openToken(opener(ring), token, AUD, (claims.exp + 60) * 1000).jti, claims.jti, 'at the edge of the tolerance')
  assertInvalid(() => openToken(opener(ring), token, AUD, (claims.exp + 60) * 1000 + 1), 'just past the tolerance')
  assertInvalid(() => openToken(opener(ring), token, AUD, (claims.exp + 61) * 1000), '61 s past expiry')
  assertInvalid(() => openToken(opener(ring), token, AUD, mintedAt + 3_600_000), 'an hour later')
  assertInvalid(() => openToken(opener(ring), token, AUD, mintedAt + 365 * 86_400_000), 'a year later')
})

test('a token issued in the future beyond the tolerance is rejected', () => {
  const now = Date.UTC(2030, 5, 1)
  const { token, claims } = mint(ring, { now: now + 120_000 })
  assertInvalid(() => openToken(opener(ring), token, AUD, now), 'issued 2 minutes ahead')
  assert.strictEqual(openToken(opener(ring), token, AUD, (claims.iat - 60) * 1000).jti, claims.jti, 'inside the clock tolerance')
})

test('a token with a non-positive lifetime is expired once the tolerance has passed', () => {
  const now = Date.UTC(2030, 5, 1)
  const { token } = mint(ring, { ttlSeconds: 0, now })
  assertInvalid(() => openToken(opener(ring), token, AUD, now + 61_000), 'ttl 0')
})

test('10 KB and 100 KB tokens are rejected', () => {
  const { token } = mint()
  const p = parts(token)
  for (const size of [MAX_TOKEN_LENGTH + 1, 10 * 1024, 100 * 1024]) {
    assertInvalid(() => openToken(opener(ring), 'A'.repeat(size), AUD), `${size} bytes of A`)
    // Well-formed apart from its size: a huge ciphertext part.
    const big = [p[0], p[1], p[2], p[3] + 'A'.repeat(size - token.length), p[4]].join('.')
    assert.strictEqual(big.length, size)
    assertInvalid(() => openToken(opener(ring), big, AUD), `${size}-byte token`)
  }
  // A real token, sealed over a big but valid claims object, is refused by size before any crypto.
  const bigClaims = mint(ring, { st: 'x'.repeat(10 * 1024) })
  assert.ok(bigClaims.token.length > 10 * 1024)
  assertInvalid(() => openToken(opener(ring), bigClaims.token, AUD), 'authentic 10 KB token')
})

test('base64 with padding or with + and / characters is rejected', () => {
  // Mint until every encrypted part has a character that differs between base64url and base64.
  let token = ''
  for (let i = 0; i < 1000; i++) {
    token = mint().token
    const p = parts(token)
    if (/[-_]/.test(p[2]) && /[-_]/.test(p[3]) && /[-_]/.test(p[4])) break
  }
  const p = parts(token)
  assert.ok(/[-_]/.test(p[2]) && /[-_]/.test(p[3]) && /[-_]/.test(p[4]), 'found a token with - or _ in every part')
  for (const i of [2, 3, 4] as const) {
    const raw = Buffer.from(p[i], 'base64url')
    const variants = {
      'standard base64 (+/ and padding)': raw.toString('base64'),
      'standard base64 without padding': raw.toString('base64').replace(/=+$/, ''),
      'base64url with padding': `${p[i]}${'='.repeat((4 - (p[i].length % 4)) % 4 || 2)}`,
      'one + character': p[i].replace(/[-_]/, '+'),
      'one / character': p[i].replace(/[-_]/, '/'),
      'a trailing =': `${p[i]}=`,
      'a percent-encoded character': p[i].replace(/[-_]/, (c) => encodeURIComponent(c === '-' ? '+' : '/')),
    }
    for (const [what, value] of Object.entries(variants)) {
      assert.notStrictEqual(value, p[i], `${what} differs from the original`)
      const q = [...p]
      q[i] = value
      assertInvalid(() => openToken(opener(ring), q.join('.'), AUD), `part ${i}: ${what}`)
    }
  }
  assert.strictEqual(openToken(opener(ring), token, AUD).aud, AUD, 'the original still opens')
})

test('each token has one spelling: a last character that decodes to the same bytes is rejected', () => {
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  // Claims of different lengths, so the ciphertext ends with 0, 2 and 4 spare bits across the tokens.
  const seen = { iv: 0, body: 0, tag: 0 }
  for (let pad = 0; pad < 3; pad++) {
    const { token } = mint(ring, { st: 'state-'.padEnd(43 + pad, 'x') })
    const p = parts(token)
    for (const [i, name] of [[2, 'iv'], [3, 'body'], [4, 'tag']] as const) {
      const original = Buffer.from(p[i], 'base64url')
      for (const c of ALPHABET) {
        const variant = `${p[i].slice(0, -1)}${c}`
        if (variant === p[i] || !Buffer.from(variant, 'base64url').equals(original)) continue
        seen[name]++
        const q = [...p]
        q[i] = variant
        assertInvalid(() => openToken(opener(ring), q.join('.'), AUD), `${name}: last character ${c} for ${p[i].slice(-1)}`)
      }
    }
    assert.strictEqual(openToken(opener(ring), token, AUD).aud, AUD, 'the original still opens')
  }
  // A 12-byte IV has no spare bits; a 16-byte tag has 4 (15 other spellings); the ciphertext some.
  assert.deepStrictEqual({ iv: seen.iv, tag: seen.tag }, { iv: 0, tag: 45 })
  assert.ok(seen.body > 0, 'some ciphertext had spare bits')
})

test('a swapped key id is rejected even when both ids hold the same key', () => {
  const shared = material()
  const both = keyring(`a:${shared},b:${shared}`)
  const { token } = mint(both)
  const p = parts(token)
  assert.strictEqual(p[1], 'a')
  assert.strictEqual(openToken(opener(both), token, AUD).aud, AUD)
  assertInvalid(() => openToken(opener(both), [p[0], 'b', p[2], p[3], p[4]].join('.'), AUD), 'kid a -> b, same key material')
  const distinct = keyring(`a:${material()},b:${material()}`)
  const q = parts(mint(distinct).token)
  assertInvalid(() => openToken(opener(distinct), [q[0], 'b', q[2], q[3], q[4]].join('.'), AUD), 'kid a -> b, different keys')
})

test('key rotation: new,old opens tokens minted under old and mints under new', () => {
  const oldKey = material()
  const newKey = material()
  const before = keyring(`old:${oldKey}`)
  const rotated = keyring(`new:${newKey},old:${oldKey}`)
  assert.strictEqual(rotated.current.id, 'new')

  const fromOld = mint(before)
  assert.strictEqual(fromOld.token.split('.')[1], 'old')
  assert.deepStrictEqual(openToken(opener(rotated), fromOld.token, AUD), fromOld.claims, 'old tokens open after rotation')

  const fromNew = mint(rotated)
  assert.strictEqual(fromNew.token.split('.')[1], 'new')
  assert.deepStrictEqual(openToken(opener(rotated), fromNew.token, AUD), fromNew.claims)
  // An app not yet rotated does not know "new".
  assertInvalid(() => openToken(opener(before), fromNew.token, AUD), 'new token at an app without the new key')
  // Once "old" is retired, its tokens are refused.
  const retired = keyring(`new:${newKey}`)
  assertInvalid(() => openToken(opener(retired), fromOld.token, AUD), 'old token after old was retired')
  assert.deepStrictEqual(openToken(opener(retired), fromNew.token, AUD), fromNew.claims)
})
