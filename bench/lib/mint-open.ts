/**
 * Token mint + open in this process, side by side with jose's compact JWE and with bare AES-256-GCM:
 * what a hand-over's token costs against the JOSE library the OIDC stack uses, and against the floor.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, randomFillSync, webcrypto } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { CompactEncrypt, compactDecrypt } from 'jose'
import { mintToken, openToken } from '../../src/shared/token.js'
import { parseSyncKeys } from '../../src/shared/keyring.js'
import { HOSTS } from './settings.js'
import { mintingKeyFor } from '../../src/shared/app-keys.js'

/** Operations per second of `op` in this process, run back to back for `seconds`. */
async function opsPerSecond(seconds: number, op: () => unknown): Promise<number> {
  let n = 0
  const t0 = performance.now()
  const deadline = t0 + seconds * 1000
  while (performance.now() < deadline) {
    for (let i = 0; i < 200; i++) {
      const pending = op()
      if (pending instanceof Promise) await pending // only the async peer (jose) pays for an await
    }
    n += 200
  }
  return n / ((performance.now() - t0) / 1000)
}

export interface MintOpenRound { tessera: number; jose: number; rawGcm: number }

/**
 * Mint + open pairs per second in one process, each opened token checked, side by side with
 * (1) jose's compact JWE (dir + A256GCM, what oidc-provider and openid-client use) sealing the same
 * claims and (2) the floor: bare node:crypto AES-256-GCM seal + open of the same bytes, no encoding.
 */
export function mintOpenPeers(): (seconds: number) => Promise<MintOpenRound> {
  const problems: string[] = []
  const material = randomBytes(32)
  const keyring = parseSyncKeys(`k1:${material.toString('base64url')}`, 'bench', problems)
  if (keyring === undefined) throw new Error(problems.join('; '))
  const aud = `http://${HOSTS.app}:3001`
  const st = randomBytes(32).toString('base64url')
  const sid = randomBytes(16).toString('base64url')
  const claims = Buffer.from(JSON.stringify({ sid, aud, st, iat: 1, exp: 2, jti: randomBytes(16).toString('base64url') }))
  // The IdP mints with the app's derived key and the app opens with the same key (app-keys.ts).
  const appKey = mintingKeyFor(keyring, aud)
  const tessera = (): void => {
    const { token } = mintToken(appKey, { sid, aud, st, ttlSeconds: 10 })
    if (openToken(() => appKey.key, token, aud).sid !== sid) throw new Error('mint/open: wrong claims')
  }
  const joseKey = webcrypto.subtle.importKey('raw', material, 'AES-GCM', false, ['encrypt', 'decrypt'])
  const jose = async (): Promise<void> => {
    const key = await joseKey
    const jwe = await new CompactEncrypt(claims).setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' }).encrypt(key)
    const { plaintext } = await compactDecrypt(jwe, key)
    if ((JSON.parse(new TextDecoder().decode(plaintext)) as { sid: string }).sid !== sid) throw new Error('jose: wrong claims')
  }
  const aad = Buffer.from(`v1.k1.${aud}`)
  const rawKey = createSecretKey(material)
  const ivs = randomBytes(12 * 4096)
  let ivAt = 0
  const rawGcm = (): void => {
    // IVs pre-drawn 4,096 at a time, so the floor pays for almost no CSPRNG call; never reused.
    if (ivAt === ivs.length) { randomFillSync(ivs); ivAt = 0 }
    const iv = ivs.subarray(ivAt, ivAt + 12)
    ivAt += 12
    const c = createCipheriv('aes-256-gcm', rawKey, iv)
    c.setAAD(aad)
    const body = c.update(claims)
    c.final()
    const d = createDecipheriv('aes-256-gcm', rawKey, iv)
    d.setAAD(aad)
    d.setAuthTag(c.getAuthTag())
    d.update(body)
    d.final()
  }
  return async (seconds) => ({
    tessera: await opsPerSecond(seconds, tessera),
    jose: await opsPerSecond(seconds, jose),
    rawGcm: await opsPerSecond(seconds, rawGcm),
  })
}
