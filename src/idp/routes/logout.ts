/**
 * POST /logout: ends the shared session, so every app sees the user signed out on its next request.
 * Without a session it changes nothing and sends the browser to the start page.
 */
import type { FastifyPluginAsync } from 'fastify'
import { CsrfError } from '../../shared/errors.js'
import { decodeHandle } from '../../shared/handle-cookie.js'
import { clearSessionCookie, type IdpContext } from '../context.js'
import { isValidCsrf } from '../csrf.js'

interface LogoutBody { csrf?: string; callback?: string }

const logoutBodySchema = {
  type: 'object',
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    callback: { type: 'string', maxLength: 8192 },
  },
} as const

export const logoutRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.post<{ Body: LogoutBody }>('/logout', { schema: { body: logoutBodySchema } }, async (req, reply) => {
    const body = req.body ?? {}
    const cookieValue = req.cookies[ctx.cookies.session]
    const handle = decodeHandle(cookieValue, ctx.config.sessionSecret, ctx.audience)
    // No session cookie (a cross-site post carries none under SameSite=Lax, or a second click):
    // nothing to end, so nothing changes and nothing claims a logout.
    if (handle === undefined) return reply.header('cache-control', 'no-store').redirect('/', 303)
    // Only a form from our own signed-in page may end the session (no forced logout by another site).
    if (!isValidCsrf(ctx.config.sessionSecret, 'logout', cookieValue, body.csrf)) throw new CsrfError('logout without a valid CSRF token')
    await ctx.sessions.destroy(handle.sid)
    req.log.info('signed out')
    clearSessionCookie(ctx, reply)
    const callback = ctx.allowList.check(body.callback)
    if (callback.kind === 'allowed') return reply.redirect(callback.url.href, 303)
    return reply.header('cache-control', 'no-store').view('signed-out.eta', {
      title: 'Signed out',
      message: 'You are signed out of every application.',
      notice: callback.kind === 'refused' ? 'The page you came from is not on the list of allowed sites, so you were not sent back to it.' : undefined,
    })
  })
}
