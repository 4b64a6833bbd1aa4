/**
 * Sign in with a passkey alone, from the login form: POST /login/passkey/options gives the browser a
 * challenge (JSON, asked for by public/passkeys.js), POST /login/passkey takes the browser's answer
 * as a form post and, when it verifies, ends in completeSignIn with `hwk` (user verification is
 * required, so the passkey counts as a second factor too). The callback and state of the form are
 * kept, so the user lands back at the app that sent them.
 */
import type { FastifyPluginAsync } from 'fastify'
import { CsrfError, PasskeyError } from '../../shared/errors.js'
import { parseState, type IdpContext } from '../context.js'
import { isValidCsrf } from '../csrf.js'
import { authenticationOptions } from '../factors/webauthn.js'
import { checkPasskey } from '../passkey-check.js'
import { completeSignIn } from '../sign-in.js'
import { localReturn } from '../local-return.js'
import { renderLogin } from './login.js'

interface OptionsBody { csrf?: string }
interface PasskeyBody { csrf?: string; callback?: string; state?: string; next?: string; response: string }

export const optionsBodySchema = {
  type: 'object',
  properties: { csrf: { type: 'string', maxLength: 128 } },
} as const

// A WebAuthn assertion in JSON: a credential id of at most 1023 bytes, client data, authenticator data and a signature.
export const ANSWER_MAX = 16_384

/** The answer of a known user's ceremony (second step, confirming it is you): the page's CSRF token and the browser's JSON. */
export const answerBodySchema = {
  type: 'object',
  required: ['response'],
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    response: { type: 'string', maxLength: ANSWER_MAX },
  },
} as const

const passkeyBodySchema = {
  type: 'object',
  required: ['response'],
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    callback: { type: 'string', maxLength: 8192 },
    state: { type: 'string', maxLength: 256 },
    next: { type: 'string', maxLength: 8192 }, // any value but the listed pages is ignored
    response: { type: 'string', maxLength: ANSWER_MAX },
  },
} as const

export const passkeyLoginRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.post<{ Body: OptionsBody }>('/login/passkey/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    // Bound to the login form's pre-login cookie, like the password form: no other site can spend our challenges.
    if (!isValidCsrf(ctx.config.sessionSecret, 'login', req.cookies[ctx.cookies.preLogin], req.body?.csrf)) {
      throw new CsrfError('passkey options without a valid CSRF token')
    }
    const options = await authenticationOptions(ctx.passkeys.rp)
    await ctx.passkeys.challenges.issue(req, reply, 'sign-in', { challenge: options.challenge, subject: '' })
    return reply.header('cache-control', 'no-store').send(options)
  })

  app.post<{ Body: PasskeyBody }>('/login/passkey', { schema: { body: passkeyBodySchema } }, async (req, reply) => {
    const callback = ctx.allowList.check(req.body.callback)
    const state = parseState(req.body.state)
    // An IdP page to return to (only those local-return.ts lists), as the password form keeps it.
    const next = localReturn(req.body.next)
    if (!isValidCsrf(ctx.config.sessionSecret, 'login', req.cookies[ctx.cookies.preLogin], req.body.csrf)) {
      const err = new CsrfError('passkey sign-in without a valid CSRF token')
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, fresh: true, next })
    }
    try {
      const user = await checkPasskey(ctx, req, 'sign-in', req.body.response)
      return await completeSignIn(ctx, req, reply, user, [{ method: 'hwk', at: Date.now() }], callback, state, next)
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'login rejected')
      return renderLogin(ctx, req, reply, { status: err.statusCode, callback, state, error: err.message, next })
    }
  })
}
