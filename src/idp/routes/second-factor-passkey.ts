/**
 * A passkey as the second step, after a password or at step-up: POST /login/second-factor/passkey/options
 * and POST /login/second-factor/passkey, beside the code form of second-factor.ts. Only the pending
 * user's own passkeys are offered and accepted; the sign-in ends in finishPending with `hwk`, so the
 * session (or, at step-up, the same session) records a hardware-backed key.
 *
 * A user who must have a factor and has none may register a passkey right there instead of an
 * authenticator app (POST /login/second-factor/passkey/register[/options]): the registration, made
 * with user verification, is the factor of this sign-in, as the first TOTP code is for an app.
 */
import type { FastifyPluginAsync } from 'fastify'
import { PasskeyError, SignInExpiredError } from '../../shared/errors.js'
import type { IdpContext } from '../context.js'
import { checkPasskey, offerUserPasskeys } from '../passkey-check.js'
import { finishPending, type PendingSignIn } from '../pending-sign-in.js'
import { acceptRegistration, offerRegistration } from '../passkey-registration.js'
import { factorCount } from '../second-factor-policy.js'
import { answerBodySchema, optionsBodySchema } from './login-passkey.js'
import { mustRead, renderCodeForm, renderEnrol } from './second-factor.js'

interface OptionsBody { csrf?: string }
interface AnswerBody { csrf?: string; response: string }

export const secondFactorPasskeyRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.post<{ Body: OptionsBody }>('/login/second-factor/passkey/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    const { pending } = await mustRead(ctx, req, req.body?.csrf)
    return offerUserPasskeys(ctx, req, reply, 'second-step', pending.user.username)
  })

  app.post<{ Body: AnswerBody }>('/login/second-factor/passkey', { schema: { body: answerBodySchema } }, async (req, reply) => {
    const { id, pending } = await mustRead(ctx, req, req.body.csrf)
    try {
      await checkPasskey(ctx, req, 'second-step', req.body.response, pending.user.username)
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'second factor rejected')
      return renderCodeForm(ctx, reply, id, pending, err.statusCode, err.message)
    }
    return finishPending(ctx, req, reply, 'hwk')
  })

  app.post<{ Body: OptionsBody }>('/login/second-factor/passkey/register/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    const { pending } = await mustRead(ctx, req, req.body?.csrf)
    await mustEnrol(pending)
    return offerRegistration(ctx, req, reply, pending.user)
  })

  app.post<{ Body: AnswerBody }>('/login/second-factor/passkey/register', { schema: { body: answerBodySchema } }, async (req, reply) => {
    const { id, pending } = await mustRead(ctx, req, req.body.csrf)
    await mustEnrol(pending)
    try {
      await acceptRegistration(ctx, req, pending.user.username, req.body.response, undefined)
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'passkey registration refused')
      return renderEnrol(ctx, reply, id, pending, err.statusCode, err.message)
    }
    return finishPending(ctx, req, reply, 'hwk')
  })

  /** Registering here is only for a user with no factor yet; one who has one answers with it instead. */
  async function mustEnrol(pending: PendingSignIn): Promise<void> {
    if (pending.verified !== undefined || factorCount(await ctx.factors.enrolled(pending.user.username)) > 0) {
      throw new SignInExpiredError('passkey enrolment at sign-in for a user who already has a factor')
    }
  }
}
