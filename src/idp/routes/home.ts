/** GET /: who you are and where you can go, or a link to sign in. Health probes live here too. */
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import { currentSession, type CurrentSession, type IdpContext } from '../context.js'
import { csrfToken } from '../csrf.js'

export const homeRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.get('/', async (req, reply) => {
    const current = await currentSession(ctx, req)
    if (current !== undefined) return renderHome(ctx, reply, current)
    return reply.header('cache-control', 'no-store').view('signed-out.eta', { title: 'Not signed in', message: 'You are not signed in.' })
  })

  // Browsers ask every site for it: an empty answer kept a day, not a 404 in every page's console.
  app.get('/favicon.ico', (_req, reply) => { void reply.code(204).header('cache-control', 'public, max-age=86400').send() })

  /** Liveness: the process answers. */
  app.get('/healthz', async () => ({ status: 'ok' }))

  /** Readiness: Redis answers; a load balancer takes the replica out while it does not. */
  app.get('/readyz', async (req, reply) => {
    try {
      await ctx.sessions.ping()
      return { status: 'ready' }
    } catch {
      return reply.code(503).send({ status: 'unavailable', code: 'TESSERA_ERR_STORE_UNAVAILABLE' })
    }
  })
}

export function renderHome(ctx: IdpContext, reply: FastifyReply, current: CurrentSession, notice?: string): FastifyReply {
  return reply.header('cache-control', 'no-store').view('home.eta', {
    title: 'Signed in',
    user: current.session.user,
    apps: ctx.allowList.origins,
    expiresAt: new Date(current.session.expiresAt).toISOString(),
    csrf: csrfToken(ctx.config.sessionSecret, 'logout', current.cookieValue),
    notice,
  })
}
