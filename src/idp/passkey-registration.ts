/**
 * Registering a passkey for a known user, written once for the two places that do it: the security
 * page (a signed-in user, password fresh) and the sign-in of a user who must enrol a factor before
 * any session exists (bound to the pending sign-in). The caller has checked who the user is.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { PasskeyError } from '../shared/errors.js'
import type { SessionUser } from '../shared/session.js'
import type { IdpContext } from './context.js'
import { PASSKEY_NAME_MAX } from './factors/passkey-store.js'
import { registrationOptions, verifyRegistration, type RegistrationResponseJSON } from './factors/webauthn.js'

/** Sends registration options for `user`, their existing passkeys excluded; the challenge is kept for this browser and this user. */
export async function offerRegistration(ctx: IdpContext, req: FastifyRequest, reply: FastifyReply, user: SessionUser): Promise<FastifyReply> {
  const { store, rp, challenges } = ctx.passkeys
  const options = await registrationOptions(rp,
    { username: user.username, displayName: user.displayName, handle: await store.userHandle(user.username) },
    await store.list(user.username))
  await challenges.issue(req, reply, 'register', { challenge: options.challenge, subject: user.username })
  return reply.header('cache-control', 'no-store').send(options)
}

/**
 * Verifies the browser's registration answer against this browser's challenge for `username` and
 * keeps the passkey under `name` (or "Passkey N"). Throws PasskeyError for every failure.
 */
export async function acceptRegistration(ctx: IdpContext, req: FastifyRequest, username: string, answer: string, name: string | undefined): Promise<void> {
  const { store, rp, challenges } = ctx.passkeys
  const issued = await challenges.take(req, 'register')
  if (issued === undefined) throw new PasskeyError('no registration challenge for this browser')
  if (issued.subject !== username) throw new PasskeyError('registration challenge issued for another user')
  const credential = await verifyRegistration(rp, parseRegistration(answer), issued.challenge)
  const count = (await store.list(username)).length
  if (!(await store.add(username, credential, nameOf(name, `Passkey ${count + 1}`)))) throw new PasskeyError('credential id already registered')
  req.log.info({ user: username }, 'passkey registered')
}

/** A user-given label: control characters out, trimmed, at most PASSKEY_NAME_MAX characters; `fallback` when empty. */
export function nameOf(raw: string | undefined, fallback: string): string {
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
