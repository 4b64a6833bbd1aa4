/**
 * The last step of every sign-in, whatever proved who the user is (a password today; a second factor
 * or a passkey next): a new session, its cookie, and the hand-over to an allowed callback. Nothing
 * before this step creates a session or mints a token.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CallbackCheck } from './allow-list.js'
import { decodeHandle } from '../shared/handle-cookie.js'
import type { AuthMethod } from '../shared/identity.js'
import type { SessionUser } from '../shared/session.js'
import { setSessionCookie, type IdpContext } from './context.js'
import { mintFor } from './handover.js'
import { knownDeviceValue } from './known-device.js'

export async function completeSignIn(
  ctx: IdpContext, req: FastifyRequest, reply: FastifyReply,
  user: SessionUser, methods: readonly AuthMethod[], callback: CallbackCheck, state: string | undefined,
  next?: string,
): Promise<FastifyReply> {
  reply.setCookie(ctx.cookies.knownDevice, knownDeviceValue(ctx.config.sessionSecret, user.username), ctx.cookies.knownDeviceOptions)
  // A browser signing in again leaves no orphan behind: its earlier session ends everywhere.
  const previous = decodeHandle(req.cookies[ctx.cookies.session], ctx.config.sessionSecret, ctx.audience)
  if (previous !== undefined) await ctx.sessions.destroy(previous.sid)
  // A new session id at every sign-in: the pre-login cookie never becomes a session (session fixation).
  const absoluteMs = ctx.config.sessionTtlSeconds * 1000
  const handle = await ctx.sessions.create(user, methods, { idleMs: ctx.config.sessionIdleSeconds * 1000, absoluteMs }, ctx.audience, ctx.signer, req.headers['user-agent'])
  await ctx.userIndex.add(user.username, handle.sid, absoluteMs)
  req.log.info({ user: user.username, amr: methods.map((m) => m.method) }, 'signed in')
  setSessionCookie(ctx, reply, handle)
  reply.clearCookie(ctx.cookies.preLogin, ctx.cookies.options)
  if (callback.kind === 'allowed' && state !== undefined) return handOverTo(ctx, reply, handle.sid, callback.url, state, 303)
  // `next` is one of the IdP's own pages (local-return.ts), never a URL the request chose.
  return reply.redirect(next ?? '/', 303)
}

/** Mints a token for session `sid` to `callback`, records it (so it can be spent once), and redirects. */
export async function handOverTo(ctx: IdpContext, reply: FastifyReply, sid: string, callback: URL, state: string, status: 302 | 303): Promise<FastifyReply> {
  const minted = mintFor(ctx, sid, callback, state)
  await ctx.tokens.record(sid, minted.tokenId, minted.ttlMs)
  return handOver(reply, minted.location, status)
}

export function handOver(reply: FastifyReply, location: string, status: 302 | 303): FastifyReply {
  // The token is in the Location: keep it out of any Referer and any cache.
  return reply.header('referrer-policy', 'no-referrer').header('cache-control', 'no-store').redirect(location, status)
}
