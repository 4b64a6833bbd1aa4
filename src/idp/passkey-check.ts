/**
 * Proving a user with a passkey, the order of checks written once for every route that accepts one
 * (the passwordless sign-in, and the second step after a password): the browser's single-use
 * challenge, the credential's owner, regulation, the WebAuthn verification, the sign counter.
 * Failures count against the user's second-factor allowance (`factorRegulation`, apart from
 * passwords, under the same limits): a passkey is a factor, whichever step it answers.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { safeEqual } from '../shared/crypto.js'
import { PasskeyError } from '../shared/errors.js'
import type { SessionUser } from '../shared/session.js'
import type { IdpContext } from './context.js'
import type { ChallengePurpose } from './factors/webauthn-challenges.js'
import { authenticationOptions, verifyAuthentication, type AuthenticationResponseJSON } from './factors/webauthn.js'
import { isKnownDevice } from './known-device.js'

/**
 * Sends the options of a ceremony for a known user (`username`): only their passkeys are offered, so
 * the browser asks for no choice, and the challenge is kept for this browser and this user.
 */
export async function offerUserPasskeys(
  ctx: IdpContext, req: FastifyRequest, reply: FastifyReply, purpose: ChallengePurpose, username: string,
): Promise<FastifyReply> {
  const passkeys = await ctx.passkeys.store.list(username)
  if (passkeys.length === 0) throw new PasskeyError(`passkey ${purpose} for a user who has none`)
  const options = await authenticationOptions(ctx.passkeys.rp, passkeys)
  await ctx.passkeys.challenges.issue(req, reply, purpose, { challenge: options.challenge, subject: username })
  return reply.header('cache-control', 'no-store').send(options)
}

/** The largest credential id WebAuthn allows is 1023 bytes: 1364 base64url characters. */
const CREDENTIAL_ID_MAX = 1364

/**
 * Resolves to the user the passkey in `answer` (the browser's JSON, as posted) belongs to, when every
 * check passes; `expected` (a username) when the ceremony was for a known user. Throws PasskeyError
 * (401) for every failure, with the reason in its detail only; 503 when Redis is down.
 */
export async function checkPasskey(
  ctx: IdpContext, req: FastifyRequest, purpose: ChallengePurpose, answer: string, expected?: string,
): Promise<SessionUser> {
  const { rp, store, challenges } = ctx.passkeys
  // The challenge goes first and goes for good: a failed answer cannot be retried with it.
  const issued = await challenges.take(req, purpose)
  if (issued === undefined) throw new PasskeyError('no challenge for this browser (none asked for, used, or expired)')
  if (expected !== undefined && issued.subject !== expected) throw new PasskeyError('challenge issued for another user')
  const response = parseAnswer(answer)
  const owner = await store.ownerOf(response.id)
  if (owner === undefined || (expected !== undefined && owner !== expected)) {
    // No passkey was checked: answer after as long as a check takes, like an unknown user name.
    await ctx.pace.wait()
    throw new PasskeyError(owner === undefined ? 'unknown credential' : 'credential of another user')
  }
  const knownDevice = isKnownDevice(ctx.config.sessionSecret, req.cookies[ctx.cookies.knownDevice], owner)
  const permit = await ctx.factorRegulation.admit(owner, req.ip, knownDevice)
  if (permit === 'banned') {
    await ctx.pace.wait()
    throw new PasskeyError('throttled')
  }
  let ok = false
  try {
    const credential = await store.get(owner, response.id)
    if (credential === undefined) throw new PasskeyError('credential removed')
    // The user handle, when the authenticator returns one, must be the one this user's passkeys carry.
    const handle = response.response.userHandle
    if (handle !== undefined && !safeEqual(handle, Buffer.from(await store.userHandle(owner)).toString('base64url'))) {
      throw new PasskeyError('user handle does not match the credential\'s owner')
    }
    const counter = await verifyAuthentication(rp, response, issued.challenge, credential)
    const use = await store.recordUse(owner, credential.id, counter)
    if (use !== 'ok') throw new PasskeyError(use === 'regressed' ? 'sign counter did not increase (cloned authenticator or replay)' : 'credential removed')
    const user = ctx.config.users.active(owner)
    if (user === undefined) throw new PasskeyError('account unknown or disabled')
    ok = true
    return user
  } finally {
    await ctx.factorRegulation.settle(permit, ok)
  }
}

/** The browser's answer, checked for the shape the library expects; anything else is a refused passkey, not a 500. */
function parseAnswer(answer: string): AuthenticationResponseJSON {
  let parsed: unknown
  try {
    parsed = JSON.parse(answer)
  } catch {
    throw new PasskeyError('answer is not JSON')
  }
  const r = parsed as Partial<AuthenticationResponseJSON> | null
  const inner = r?.response as Partial<AuthenticationResponseJSON['response']> | undefined
  if (typeof r?.id !== 'string' || r.id === '' || r.id.length > CREDENTIAL_ID_MAX || r.type !== 'public-key' ||
      typeof inner?.clientDataJSON !== 'string' || typeof inner.authenticatorData !== 'string' || typeof inner.signature !== 'string' ||
      (inner.userHandle !== undefined && typeof inner.userHandle !== 'string')) {
    throw new PasskeyError('answer has the wrong shape')
  }
  return r as AuthenticationResponseJSON
}
