/**
 * The passkeys section of the security page (views/security-passkeys.eta): register
 * (POST /security/passkeys/options, then POST /security/passkeys), rename and remove. Every change
 * goes through requireFreshAuth: the session, the page's CSRF token, the password typed again in the
 * last 5 minutes. Removing the last second factor of a user whom policy requires one is refused.
 */
import type { FastifyPluginAsync } from 'fastify'
import { FactorRequiredError, PasskeyError } from '../../shared/errors.js'
import type { IdpContext } from '../context.js'
import { requireFreshAuth } from '../fresh-auth.js'
import { mayRemoveFactor } from '../second-factor-policy.js'
import { registrationOptions, verifyRegistration, type RegistrationResponseJSON } from '../factors/webauthn.js'
import { PASSKEY_NAME_MAX } from '../factors/passkey-store.js'
import { ANSWER_MAX, optionsBodySchema } from './login-passkey.js'
import { renderSecurity } from './security.js'

interface OptionsBody { csrf?: string }
interface AddBody { csrf?: string; name?: string; response: string }
interface ChangeBody { csrf?: string; id: string; name?: string }

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
  app.post<{ Body: OptionsBody }>('/security/passkeys/options', { schema: { body: optionsBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body?.csrf)
    const { user } = current.session
    const { store, rp, challenges } = ctx.passkeys
    const options = await registrationOptions(rp,
      { username: user.username, displayName: user.displayName, handle: await store.userHandle(user.username) },
      await store.list(user.username))
    // Bound to this user: a registration answer is kept only for the session that asked for it.
    await challenges.issue(req, reply, 'register', { challenge: options.challenge, subject: user.username })
    return reply.header('cache-control', 'no-store').send(options)
  })

  app.post<{ Body: AddBody }>('/security/passkeys', { schema: { body: addBodySchema } }, async (req, reply) => {
    const current = await requireFreshAuth(ctx, req, req.body.csrf)
    const { username } = current.session.user
    const { store, rp, challenges } = ctx.passkeys
    try {
      const issued = await challenges.take(req, 'register')
      if (issued === undefined) throw new PasskeyError('no registration challenge for this browser')
      if (issued.subject !== username) throw new PasskeyError('registration challenge issued for another user')
      const credential = await verifyRegistration(rp, parseRegistration(req.body.response), issued.challenge)
      const count = (await store.list(username)).length
      if (!(await store.add(username, credential, nameOf(req.body.name, `Passkey ${count + 1}`)))) throw new PasskeyError('credential id already registered')
    } catch (err) {
      if (!(err instanceof PasskeyError)) throw err
      req.log.info({ code: err.code, detail: err.detail }, 'passkey registration refused')
      return renderSecurity(ctx, reply, current, { status: err.statusCode, error: err.message })
    }
    req.log.info({ user: username }, 'passkey registered')
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

/** A user-given label: control characters out, trimmed, at most PASSKEY_NAME_MAX characters; `fallback` when empty. */
function nameOf(raw: string | undefined, fallback: string): string {
  const name = (raw ?? '').replace(/\p{Cc}/gu, ' ').trim().slice(0, PASSKEY_NAME_MAX)
  return name === '' ? fallback : name
}

/** The browser's registration answer, checked for the shape the library expects; anything else is a refused passkey, not a 500. */
function parseRegistration(answer: string): RegistrationResponseJSON {
  let parsed: Partial<RegistrationResponseJSON> | null
  try {
    parsed = JSON.parse(answer) as Partial<RegistrationResponseJSON> | null
  } catch {
    throw new PasskeyError('registration answer is not JSON')
  }
  if (typeof parsed?.id !== 'string' || parsed.type !== 'public-key' ||
      typeof parsed.response?.clientDataJSON !== 'string' || typeof parsed.response.attestationObject !== 'string') {
    throw new PasskeyError('registration answer has the wrong shape')
  }
  return parsed as RegistrationResponseJSON
}
