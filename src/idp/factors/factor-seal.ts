/**
 * Sealing of factor secrets (TOTP secrets at rest, an enrolment's secret in a form) under the
 * FACTOR_KEYS keyring: the first key seals, every key opens, so keys rotate as SYNC_KEYS do.
 *
 * Wire format: `f1.<kid>.<iv>.<ciphertext>.<tag>` (unpadded base64url), AES-256-GCM with a random
 * 96-bit IV and a 128-bit tag. The associated data is `f1.<kid>.<purpose>|<bound to>`: a secret
 * sealed for one user (or one enrolment) fails authentication as anyone else's, and cannot be moved
 * from one purpose to another.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto'
import { randomBytesPooled } from '../../shared/crypto.js'
import type { Keyring } from '../../shared/keyring.js'

const VERSION = 'f1'
const IV_BYTES = 12
const TAG_BYTES = 16

export type SealPurpose = 'totp' | 'totp-enrol'

function aad(kid: string, purpose: SealPurpose, boundTo: string): Buffer {
  return Buffer.from(`${VERSION}.${kid}.${purpose}|${boundTo}`)
}

export function sealFactor(keyring: Keyring, purpose: SealPurpose, boundTo: string, plain: Buffer): string {
  const { id, key } = keyring.current
  // A copy: the pool's slice must not be reused while it is the IV.
  const iv = Buffer.from(randomBytesPooled(IV_BYTES))
  const c = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES })
  c.setAAD(aad(id, purpose, boundTo))
  const body = Buffer.concat([c.update(plain), c.final()])
  return [VERSION, id, iv.toString('base64url'), body.toString('base64url'), c.getAuthTag().toString('base64url')].join('.')
}

/** The plaintext, or undefined for every failure (malformed, unknown key, tampered, wrong purpose or binding). */
export function openFactor(keyring: Keyring, purpose: SealPurpose, boundTo: string, sealed: string): Buffer | undefined {
  const parts = sealed.split('.')
  if (parts.length !== 5 || parts[0] !== VERSION) return undefined
  const [, kid, ivText, bodyText, tagText] = parts as [string, string, string, string, string]
  const key = keyring.byId.get(kid)
  const iv = Buffer.from(ivText, 'base64url')
  const tag = Buffer.from(tagText, 'base64url')
  // base64url decoding skips bad characters instead of throwing, so the lengths are the real check.
  if (key === undefined || iv.length !== IV_BYTES || tag.length !== TAG_BYTES) return undefined
  try {
    const d = createDecipheriv('aes-256-gcm', key.key, iv, { authTagLength: TAG_BYTES })
    d.setAAD(aad(kid, purpose, boundTo))
    d.setAuthTag(tag)
    return Buffer.concat([d.update(Buffer.from(bodyText, 'base64url')), d.final()])
  } catch {
    return undefined
  }
}
