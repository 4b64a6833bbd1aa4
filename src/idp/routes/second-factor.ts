/**
 * /login/second-factor: the step after the password (or at step-up): a TOTP code or a recovery
 * code, regulated per user like passwords; or, for a user who must have a factor and has none,
 * enrolling TOTP on a page bound to the pending sign-in (never a session), then the recovery codes,
 * then the sign-in. Sessions and tokens are made only by finishPending, after the factor.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { BadSecondFactorError, CsrfError, FactorUnavailableError, SignInExpiredError } from '../../shared/errors.js'
import { currentSession, type IdpContext } from '../context.js'
import { csrfToken, isValidCsrf } from '../csrf.js'
import { finishPending, readPending, updatePending, whileClaimed, type PendingSignIn } from '../pending-sign-in.js'
import { factorCount } from '../second-factor-policy.js'
import { normaliseRecoveryCode, recoveryCodeHash } from '../factors/recovery-codes.js'
import { checkTotp, normaliseCode } from '../factors/totp.js'
import { confirmEnrolment, enrolmentKeyring, openEnrolment, renderEnrolment, renderRecoveryCodes, startEnrolment } from '../factors/totp-enrolment.js'

interface FactorBody { csrf?: string; code?: string; recovery?: string; enrolment?: string }

const bodySchema = {
  type: 'object',
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    code: { type: 'string', maxLength: 32 },
    recovery: { type: 'string', maxLength: 64 },
    enrolment: { type: 'string', maxLength: 512 },
  },
} as const

const PATH = '/login/second-factor'

export const secondFactorRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  const opts = { schema: { body: bodySchema } }

  app.get(PATH, async (req, reply) => {
    const found = await readPending(ctx, req)
    // Back (or a reload) after a finished sign-in: the pending sign-in is spent and the session is
    // live, so the signed-in page, not an error that tells a signed-in user to sign in again.
    if (found === undefined && await currentSession(ctx, req) !== undefined) return reply.redirect('/', 303)
    const { id, pending } = checked(ctx, req, found)
    if (pending.verified !== undefined) return renderRecoveryCodes(reply, [], { action: `${PATH}/continue`, csrf: pendingCsrf(ctx, id) })
    const enrolled = await ctx.factors.enrolled(pending.user.username)
    if (factorCount(enrolled) === 0) return renderEnrol(ctx, reply, id, pending, 200)
    return renderCodeForm(ctx, reply, id, pending, 200)
  })

  app.post<{ Body: FactorBody }>(PATH, opts, async (req, reply) => {
    const { id, pending } = await mustRead(ctx, req, req.body?.csrf)
    return whileClaimed(ctx, id, async () => {
      const { username } = pending.user
      const code = normaliseCode(req.body?.code)
      const recovery = normaliseRecoveryCode(req.body?.recovery)
      // Every attempt takes a slot of the user's second-factor allowance (a known device: only the
      // per-user count applies, so a shared address cannot lock out this user).
      const permit = await ctx.factorRegulation.admit(username, req.ip, true)
      let ok = false
      let unreadable = false
      if (permit !== 'banned') {
        try {
          if (code !== undefined) {
            const verdict = await checkTotp(ctx.factors, ctx.config.factorKeyring, username, code)
            ok = verdict === 'ok'
            unreadable = verdict === 'unreadable'
          } else if (recovery !== undefined) {
            ok = await ctx.factors.useRecoveryCode(username, recoveryCodeHash(username, recovery))
          }
        } finally {
          await ctx.factorRegulation.settle(permit, ok)
        }
      }
      if (unreadable) throw new FactorUnavailableError('the TOTP secret does not open with FACTOR_KEYS')
      if (!ok) {
        const err = new BadSecondFactorError(permit === 'banned' ? 'throttled' : 'wrong, replayed or used code')
        req.log.info({ code: err.code, detail: err.detail }, 'second factor rejected')
        return renderCodeForm(ctx, reply, id, pending, err.statusCode, err.message)
      }
      if (recovery !== undefined) req.log.info({ user: username }, 'recovery code used')
      return finishPending(ctx, req, reply, 'otp')
    })
  })

  app.post<{ Body: FactorBody }>(`${PATH}/enrol`, opts, async (req, reply) => {
    const { id, pending } = await mustRead(ctx, req, req.body?.csrf)
    const keyring = enrolmentKeyring(ctx)
    const { username } = pending.user
    // A factor enrolled meanwhile (another tab): the code form, not a second enrolment over it.
    if (factorCount(await ctx.factors.enrolled(username)) > 0) return reply.redirect(PATH, 303)
    const enrolment = openEnrolment(keyring, username, id, req.body?.enrolment)
    if (enrolment === undefined) throw new SignInExpiredError('enrolment form expired or not sealed for this sign-in')
    const result = await confirmEnrolment(ctx, keyring, username, enrolment, normaliseCode(req.body?.code))
    // Confirmed before (a double post): the step page, which asks for a code, or enrols afresh if the factor is gone.
    if (result === 'used') return reply.redirect(PATH, 303)
    if (result === 'wrong-code') {
      return renderEnrolment(ctx, reply, {
        status: new BadSecondFactorError().statusCode, username, enrolment, action: `${PATH}/enrol`, csrf: pendingCsrf(ctx, id),
        error: 'That code did not match. Check the time on your phone and try the new code.',
      })
    }
    req.log.info({ user: username }, 'totp enrolled at sign-in')
    if (!(await updatePending(ctx, id, { ...pending, verified: 'otp' }))) throw new SignInExpiredError('pending sign-in ended during enrolment')
    return renderRecoveryCodes(reply, result.codes, { action: `${PATH}/continue`, csrf: pendingCsrf(ctx, id) })
  })

  /** After the recovery codes of an enrolment: the sign-in ends here, its factor already checked. */
  app.post<{ Body: FactorBody }>(`${PATH}/continue`, opts, async (req, reply) => {
    const { pending } = await mustRead(ctx, req, req.body?.csrf)
    if (pending.verified === undefined) return reply.redirect(PATH, 303)
    return finishPending(ctx, req, reply, pending.verified)
  })
}

/** The browser's pending sign-in (and, for a POST, its form's CSRF token checked), or SignInExpiredError. */
export async function mustRead(ctx: IdpContext, req: FastifyRequest, csrf?: unknown): Promise<{ id: string; pending: PendingSignIn }> {
  return checked(ctx, req, await readPending(ctx, req), csrf)
}

/** `found` (readPending's answer), or SignInExpiredError; for a POST, its form's CSRF token checked. */
function checked(ctx: IdpContext, req: FastifyRequest, found: { id: string; pending: PendingSignIn } | undefined, csrf?: unknown): { id: string; pending: PendingSignIn } {
  if (found === undefined) throw new SignInExpiredError('no pending sign-in for this browser')
  if (req.method === 'POST' && !isValidCsrf(ctx.config.sessionSecret, 'second-factor', found.id, csrf)) throw new CsrfError('second-factor form without a valid CSRF token')
  return found
}

function pendingCsrf(ctx: IdpContext, id: string): string {
  return csrfToken(ctx.config.sessionSecret, 'second-factor', id)
}

export async function renderCodeForm(ctx: IdpContext, reply: FastifyReply, id: string, pending: PendingSignIn, status: number, error?: string): Promise<FastifyReply> {
  const enrolled = await ctx.factors.enrolled(pending.user.username)
  return reply.code(status).header('cache-control', 'no-store').view('second-factor.eta', {
    title: 'Second step',
    username: pending.user.username,
    csrf: pendingCsrf(ctx, id),
    stepUp: pending.stepUp !== undefined,
    error,
    // Which forms to show: a passkey button (second-factor-passkey.ts) and the code forms.
    passkeys: enrolled.passkeys > 0,
    totp: enrolled.totp,
  })
}

export function renderEnrol(ctx: IdpContext, reply: FastifyReply, id: string, pending: PendingSignIn, status: number, error?: string): FastifyReply {
  const keyring = enrolmentKeyring(ctx)
  const { username } = pending.user
  return renderEnrolment(ctx, reply, {
    status, username, enrolment: startEnrolment(keyring, username, id), action: `${PATH}/enrol`, csrf: pendingCsrf(ctx, id),
    notice: pending.stepUp === undefined
      ? 'Your account needs a second factor. Add a passkey or set up an authenticator app to finish signing in.'
      : 'The application you came from needs a second factor. Add a passkey or set up an authenticator app to continue.',
    // A passkey instead of the app (second-factor-passkey.ts), registered for this pending sign-in.
    passkeyEnrol: true,
    error,
  })
}
