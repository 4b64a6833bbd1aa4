/**
 * A passkey as the second step, after a password or at step-up: POST /login/second-factor/passkey/options
 * and POST /login/second-factor/passkey, beside the code form of second-factor.ts. Only the pending
 * user's own passkeys are offered and accepted; the sign-in ends in finishPending with `hwk`, so the
 * session (or, at step-up, the same session) records a hardware-backed key.
 */
import type { FastifyPluginAsync } from 'fastify'
import { PasskeyError } from '../../shared/errors.js'
import type { IdpContext } from '../context.js'
import { authenticationOptions } from '../factors/webauthn.js'
import { checkPasskey } from '../passkey-check.js'
import { finishPending } from '../pending-sign-in.js'
import { ANSWER_MAX, optionsBodySchema } from './login-passkey.js'
import { mustRead, renderCodeForm } from './second-factor.js'

interface OptionsBody { csrf?: string }
interface AnswerBody { csrf?: string; response: string }

const answerBodySchema = {
  type: 'object',
  required: ['response'],
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    response: { type: 'string', maxLength: ANSWER_MAX },
  },
} as const

export const secondFactorPasskeyRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.post<{ Body: OptionsBody }>('/login/second-factor/passkey/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    const { pending } = await mustRead(ctx, req, req.body?.csrf)
    const { username } = pending.user
    const passkeys = await ctx.passkeys.store.list(username)
    if (passkeys.length === 0) throw new PasskeyError('second step with a passkey for a user who has none')
    // The user is known here: only their passkeys are offered, so the browser asks for no choice.
    const options = await authenticationOptions(ctx.passkeys.rp, passkeys)
    await ctx.passkeys.challenges.issue(req, reply, 'second-step', { challenge: options.challenge, subject: username })
    return reply.header('cache-control', 'no-store').send(options)
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
}
