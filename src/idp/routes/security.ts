/**
 * The security page (/security): the signed-in user's second factors, enrolled and removed here.
 * Every change needs the form's CSRF token and the password typed again in the last 5 minutes
 * (fresh-auth.ts); removing the last factor of a user whom policy requires one is refused.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { BadRequestError, BadSecondFactorError, CsrfError, FactorRequiredError, SignInExpiredError, UnauthenticatedError } from '../../shared/errors.js'
import { currentSession, wantsHtml, type CurrentSession, type IdpContext } from '../context.js'
import { csrfToken, isValidCsrf } from '../csrf.js'
import { confirmPassword, hasFreshAuth, requireFreshAuth } from '../fresh-auth.js'
import { isRequiredFor, mayRemoveFactor } from '../second-factor-policy.js'
import { hashAll, newRecoveryCodes } from '../factors/recovery-codes.js'
import { normaliseCode } from '../factors/totp.js'
import { randomId } from '../../shared/crypto.js'
import { confirmEnrolment, enrolmentKeyring, openEnrolment, renderEnrolment, renderRecoveryCodes, startEnrolment } from '../factors/totp-enrolment.js'
import { loginReturningTo } from '../local-return.js'

interface CsrfBody { csrf?: string }
interface RegenerateBody extends CsrfBody { once?: string }
interface ConfirmBody extends CsrfBody { password?: string }
interface EnrolBody extends CsrfBody { enrolment?: string; code?: string }

const bodySchema = {
  type: 'object',
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    password: { type: 'string', maxLength: 1024 },
    enrolment: { type: 'string', maxLength: 512 },
    code: { type: 'string', maxLength: 32 },
    once: { type: 'string', maxLength: 64 },
  },
} as const

export const securityRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  const opts = { schema: { body: bodySchema } }

  app.get('/security', async (req, reply) => {
    const current = await currentSession(ctx, req)
    if (current === undefined) return reply.header('cache-control', 'no-store').redirect(loginReturningTo('/security'), 302)
    return renderSecurity(ctx, reply, current)
  })

  /** The password typed again: opens changes for 5 minutes. Regulated as the login form is. */
  app.post<{ Body: ConfirmBody }>('/security/confirm', opts, async (req, reply) => {
    const current = await currentSession(ctx, req)
    if (current === undefined) {
      // A browser whose session ended meanwhile signs in and comes back here, as from /sessions/confirm;
      // a script gets the 401 every other /security post answers.
      if (!wantsHtml(req)) throw new UnauthenticatedError()
      return reply.redirect(loginReturningTo('/security'), 303)
    }
    if (!isValidCsrf(ctx.config.sessionSecret, 'security', current.cookieValue, req.body?.csrf)) throw new CsrfError('security confirm without a valid CSRF token')
    const refused = await confirmPassword(ctx, req, current, req.body?.password ?? '')
    if (refused !== undefined) return renderSecurity(ctx, reply, current, { status: refused.statusCode, error: 'Incorrect password.' })
    return reply.redirect('/security', 303)
  })

  app.post<{ Body: EnrolBody }>('/security/totp/start', opts, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    const keyring = enrolmentKeyring(ctx)
    const { username } = current.session.user
    return renderEnrolment(ctx, reply, {
      status: 200, username, enrolment: startEnrolment(keyring, username, current.session.sid),
      action: '/security/totp/confirm', csrf: securityCsrf(ctx, current),
    })
  })

  app.post<{ Body: EnrolBody }>('/security/totp/confirm', opts, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    const keyring = enrolmentKeyring(ctx)
    const { username } = current.session.user
    const enrolment = openEnrolment(keyring, username, current.session.sid, req.body?.enrolment)
    if (enrolment === undefined) throw new SignInExpiredError('enrolment form expired or not sealed for this session')
    const result = await confirmEnrolment(ctx, keyring, username, enrolment, normaliseCode(req.body?.code))
    // Confirmed before: the security page shows what is set up now, and makes new recovery codes.
    if (result === 'used') return reply.redirect('/security', 303)
    if (result === 'wrong-code') {
      const err = new BadSecondFactorError('wrong first code at enrolment')
      return renderEnrolment(ctx, reply, {
        status: err.statusCode, username, enrolment, action: '/security/totp/confirm', csrf: securityCsrf(ctx, current),
        error: 'That code did not match. Check the time on your phone and try the new code.',
      })
    }
    req.log.info({ user: username }, 'totp enrolled')
    return renderRecoveryCodes(reply, result.codes, { href: '/security' })
  })

  app.post<{ Body: CsrfBody }>('/security/totp/remove', opts, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    const { user } = current.session
    const enrolled = await ctx.factors.enrolled(user.username)
    if (enrolled.totp && !mayRemoveFactor(ctx.config.secondFactor, user, enrolled)) throw new FactorRequiredError('last factor of a user who must have one')
    if (await ctx.factors.removeTotp(user.username)) req.log.info({ user: user.username }, 'totp removed')
    return reply.redirect('/security', 303)
  })

  app.post<{ Body: RegenerateBody }>('/security/recovery/regenerate', opts, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    const { username } = current.session.user
    // The page's form carries a value of its own: posted again (a reload of the codes page, Back then
    // Forward) it makes no new codes, which would silently kill the ones just shown and saved.
    const once = req.body?.once
    if (once !== undefined && !(await ctx.factors.claimRecoveryForm(username, once))) return reply.redirect('/security', 303)
    const codes = newRecoveryCodes()
    if (!(await ctx.factors.replaceRecoveryCodes(username, hashAll(username, codes)))) {
      throw new BadRequestError('Set up a second factor first: recovery codes stand in for one.', 'recovery codes without a factor')
    }
    req.log.info({ user: username }, 'recovery codes replaced')
    return renderRecoveryCodes(reply, codes, { href: '/security' })
  })
}

function securityCsrf(ctx: IdpContext, current: CurrentSession): string {
  return csrfToken(ctx.config.sessionSecret, 'security', current.cookieValue)
}

export async function renderSecurity(ctx: IdpContext, reply: FastifyReply, current: CurrentSession, view: { status?: number; error?: string } = {}): Promise<FastifyReply> {
  const { user } = current.session
  const enrolled = await ctx.factors.enrolled(user.username)
  const totp = enrolled.totp ? await ctx.factors.totp(user.username) : undefined
  const policy = ctx.config.secondFactor
  return reply.code(view.status ?? 200).header('cache-control', 'no-store').view('security.eta', {
    title: 'Security',
    user,
    fresh: await hasFreshAuth(ctx, current.session.sid),
    csrf: securityCsrf(ctx, current),
    error: view.error,
    totp: enrolled.totp ? { since: new Date(totp?.enrolledAt ?? 0).toISOString().slice(0, 10) } : undefined,
    recoveryCodes: enrolled.recoveryCodes,
    once: randomId(),
    hasFactor: enrolled.totp || enrolled.passkeys > 0,
    totpAvailable: policy.mode !== 'off' && ctx.config.factorKeyring !== undefined,
    required: isRequiredFor(policy, user),
    // SECOND_FACTOR=off: sign-ins ask for no second factor, whatever is enrolled.
    asked: policy.mode !== 'off',
    mayRemoveTotp: mayRemoveFactor(policy, user, enrolled),
    mayRemovePasskey: mayRemoveFactor(policy, user, enrolled),
    // The passkeys section (views/security-passkeys.eta; its changes: security-passkeys.ts).
    passkeys: (await ctx.passkeys.store.list(user.username)).map((p, index) => ({
      index, id: p.id, name: p.name, createdAt: new Date(p.createdAt).toISOString(),
      lastUsedAt: p.lastUsedAt === undefined ? undefined : new Date(p.lastUsedAt).toISOString(),
    })),
  })
}
