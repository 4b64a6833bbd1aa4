/**
 * The passkeys section of the security page (views/security-passkeys.eta): register
 * (POST /security/passkeys/options, then POST /security/passkeys), rename and remove. Every change
 * goes through requireFreshAuth: the session, the page's CSRF token, the password typed again in the
 * last 5 minutes (or one of the user's passkeys used for it: POST /security/confirm/passkey).
 * Removing the last second factor of a user whom policy requires one is refused.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import { CsrfError, FactorRequiredError, PasskeyError, UnauthenticatedError } from '../../shared/errors.js'
import { currentSession, type CurrentSession, type IdpContext } from '../context.js'
import { isValidCsrf } from '../csrf.js'
import { markFreshAuth, requireFreshAuth } from '../fresh-auth.js'
import { checkPasskey, offerUserPasskeys } from '../passkey-check.js'
import { mayRemoveFactor } from '../second-factor-policy.js'
import { acceptRegistration, nameOf, offerRegistration } from '../passkey-registration.js'
import { ANSWER_MAX, answerBodySchema, optionsBodySchema } from './login-passkey.js'
import { renderSecurity } from './security.js'

interface OptionsBody { csrf?: string }
interface AddBody { csrf?: string; name?: string; response: string }
interface ChangeBody { csrf?: string; id: string; name?: string }
interface ConfirmBody { csrf?: string; response: string }

const addBodySchema = {
  type: 'object',
  required: ['response'],
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    name: { type: 'string', maxLength: 256 },
    response: { type: 'string', maxLength: ANSWER_MAX },
  },
} as const

const changeBodySchema = {
  type: 'object',
  required: ['id'],
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    id: { type: 'string', minLength: 1, maxLength: 1400 },
    name: { type: 'string', maxLength: 256 },
  },
} as const

const GONE = 'That passkey is no longer registered.'

export const securityPasskeyRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  /** The session and the security page's CSRF token, without the fresh check (what confirming gives). */
  async function signedIn(req: FastifyRequest, csrf: unknown): Promise<CurrentSession> {
    const current = await currentSession(ctx, req)
    if (current === undefined) throw new UnauthenticatedError()
    if (!isValidCsrf(ctx.config.sessionSecret, 'security', current.cookieValue, csrf)) throw new CsrfError('security passkey confirm without a valid CSRF token')
    return current
  }

  /** "Confirm it is you" with one of the user's passkeys instead of the password. */
  app.post<{ Body: OptionsBody }>('/security/confirm/passkey/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    return offerUserPasskeys(ctx, req, reply, 'confirm', (await signedIn(req, req.body?.csrf)).session.user.username)
  })

  app.post<{ Body: ConfirmBody }>('/security/confirm/passkey', { schema: { body: answerBodySchema } }, async (req, reply) => {
    const current = await signedIn(req, req.body.csrf)
    try {
      await checkPasskey(ctx, req, 'confirm', req.body.response, current.session.user.username)
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'security confirm rejected')
      return renderSecurity(ctx, reply, current, { status: err.statusCode, error: err.message })
    }
    await markFreshAuth(ctx, current.session.sid)
    return reply.header('cache-control', 'no-store').redirect('/security', 303)
  })

  app.post<{ Body: OptionsBody }>('/security/passkeys/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    return offerRegistration(ctx, req, reply, current.session.user)
  })

  app.post<{ Body: AddBody }>('/security/passkeys', { schema: { body: addBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body.csrf)
    try {
      await acceptRegistration(ctx, req, current.session.user.username, req.body.response, req.body.name)
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'passkey registration refused')
      return renderSecurity(ctx, reply, current, { status: err.statusCode, error: err.message })
    }
    return reply.header('cache-control', 'no-store').redirect('/security#passkeys', 303)
  })

  app.post<{ Body: ChangeBody }>('/security/passkeys/rename', { schema: { body: changeBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body.csrf)
    if (!(await ctx.passkeys.store.rename(current.session.user.username, req.body.id, nameOf(req.body.name, 'Passkey')))) {
      return renderSecurity(ctx, reply, current, { status: 404, error: GONE })
    }
    return reply.header('cache-control', 'no-store').redirect('/security#passkeys', 303)
  })

  app.post<{ Body: ChangeBody }>('/security/passkeys/remove', { schema: { body: changeBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body.csrf)
    const { user } = current.session
    const { store } = ctx.passkeys
    if ((await store.get(user.username, req.body.id)) === undefined) return renderSecurity(ctx, reply, current, { status: 404, error: GONE })
    if (!mayRemoveFactor(ctx.config.secondFactor, user, await ctx.factors.enrolled(user.username))) {
      throw new FactorRequiredError('last factor of a user who must have one')
    }
    if (await store.remove(user.username, req.body.id)) req.log.info({ user: user.username }, 'passkey removed')
    return reply.header('cache-control', 'no-store').redirect('/security#passkeys', 303)
  })
}
