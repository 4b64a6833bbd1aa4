/**
 * Enrolling TOTP, shared by the security page and the sign-in that must enrol first: a new secret is
 * shown (QR code and text) and travels in the form sealed under FACTOR_KEYS, bound to the user and
 * to the session or pending sign-in that asked (so Redis holds nothing until the first code proves
 * the app has it). The first right code enrols it, its step already spent, with 10 new recovery codes;
 * and spends the form: the same form cannot confirm again (factor-store.ts marks it in Redis).
 */
import type { FastifyReply } from 'fastify'
import type { Keyring } from '../../shared/keyring.js'
import { FactorUnavailableError } from '../../shared/errors.js'
import type { IdpContext } from '../context.js'
import { openFactor, sealFactor } from './factor-seal.js'
import { hashAll, newRecoveryCodes } from './recovery-codes.js'
import { newTotpSecret, otpauthUri, qrSvg, sealTotpSecret, stepOf } from './totp.js'

/** How long an enrolment form stays good: time to find the phone and scan. */
const ENROLMENT_MAX_AGE_MS = 10 * 60_000
/**
 * The used-form marker outlives the form by this much: another IdP replica whose clock is behind
 * this one's would still open the form a little longer.
 */
const CLOCK_SKEW_MS = 60_000

export interface Enrolment {
  readonly secret: string
  /** The secret sealed for the form's hidden field. */
  readonly sealed: string
  /** When the form was made (epoch ms): it opens until ENROLMENT_MAX_AGE_MS after. */
  readonly issuedAt: number
}

/** The FACTOR_KEYS keyring when TOTP may be enrolled; FactorUnavailableError when it may not (fail closed). */
export function enrolmentKeyring(ctx: IdpContext): Keyring {
  if (ctx.config.secondFactor.mode === 'off') throw new FactorUnavailableError('SECOND_FACTOR is off')
  if (ctx.config.factorKeyring === undefined) throw new FactorUnavailableError('FACTOR_KEYS is not set')
  return ctx.config.factorKeyring
}

export function startEnrolment(keyring: Keyring, username: string, binding: string, now = Date.now()): Enrolment {
  const secret = newTotpSecret()
  const sealed = sealFactor(keyring, 'totp-enrol', `${binding}|${username}`, Buffer.from(JSON.stringify({ s: secret, t: now })))
  return { secret, sealed, issuedAt: now }
}

/** The secret of an enrolment form sealed for this user and binding, not older than 10 minutes. */
export function openEnrolment(keyring: Keyring, username: string, binding: string, sealed: unknown, now = Date.now()): Enrolment | undefined {
  if (typeof sealed !== 'string' || sealed.length > 512) return undefined
  const plain = openFactor(keyring, 'totp-enrol', `${binding}|${username}`, sealed)
  if (plain === undefined) return undefined
  const v = JSON.parse(plain.toString()) as { s: string; t: number }
  return now - v.t <= ENROLMENT_MAX_AGE_MS ? { secret: v.s, sealed, issuedAt: v.t } : undefined
}

/** A confirmed enrolment's recovery codes; a wrong code; or a form confirmed before (its codes were shown then). */
export type EnrolmentResult = { readonly codes: string[] } | 'wrong-code' | 'used'

/**
 * Enrols the enrolment's secret when `code` is its code now. A form is confirmed once: posted again
 * (a double click, a resubmit, a race) it enrols nothing and replaces no recovery codes, and the
 * route sends the browser to where the enrolment's outcome shows ('used'), never back to a form that
 * can no longer succeed.
 */
export async function confirmEnrolment(ctx: IdpContext, keyring: Keyring, username: string, enrolment: Enrolment, code: string | undefined, now = Date.now()): Promise<EnrolmentResult> {
  const { secret } = enrolment
  const step = code === undefined ? undefined : stepOf(secret, code, now)
  if (step === undefined) return 'wrong-code'
  const codes = newRecoveryCodes()
  const once = { secret, ttlMs: enrolment.issuedAt + ENROLMENT_MAX_AGE_MS + CLOCK_SKEW_MS - now }
  const enrolled = await ctx.factors.enrolTotp(username, { sealed: sealTotpSecret(keyring, username, secret), enrolledAt: now }, step, hashAll(username, codes), once)
  return enrolled ? { codes } : 'used'
}

export interface EnrolView {
  readonly status: number
  readonly username: string
  readonly enrolment: Enrolment
  /** Where the form posts, and its CSRF token. */
  readonly action: string
  readonly csrf: string
  readonly error?: string
  /** Shown above the form (why enrolment is asked for). */
  readonly notice?: string
  /** At sign-in: offer to register a passkey instead (views/enrol-passkey.eta). */
  readonly passkeyEnrol?: boolean
}

/** The enrolment page: the QR code as an SVG image (no script), the secret as text, a field for the first code. */
export function renderEnrolment(ctx: IdpContext, reply: FastifyReply, view: EnrolView): FastifyReply {
  const issuer = new URL(ctx.config.publicUrl).host
  const svg = qrSvg(otpauthUri(view.enrolment.secret, issuer, view.username))
  return reply.code(view.status).header('cache-control', 'no-store').view('totp-enrol.eta', {
    title: 'Set up an authenticator app',
    qr: `data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}`,
    secret: view.enrolment.secret.match(/.{1,4}/g)?.join(' ') ?? view.enrolment.secret,
    sealed: view.enrolment.sealed,
    action: view.action,
    csrf: view.csrf,
    issuer,
    username: view.username,
    error: view.error,
    notice: view.notice,
    passkeyEnrol: view.passkeyEnrol === true,
  })
}

/** The recovery codes, shown once; `next` is a form (sign-in: continue) or a link (security page). */
export function renderRecoveryCodes(reply: FastifyReply, codes: readonly string[], next: { action: string; csrf: string } | { href: string }): FastifyReply {
  return reply.header('cache-control', 'no-store').view('recovery-codes.eta', { title: 'Your recovery codes', codes, next })
}
