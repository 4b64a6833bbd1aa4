/**
 * GET /sessions, the user's own sessions (device, signed in, last seen, apps, how), and the ways to
 * end them: POST /sessions/end (one, by fingerprint) and POST /sessions/end-others. Ending a session
 * deletes the one shared record, so every app refuses it on its next request. Ending another
 * session needs a recent authentication (ASVS V7.5.2): a sign-in, or the password typed again at
 * POST /sessions/confirm, in the last 5 minutes. Ending this one is a sign-out and needs none.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import { CsrfError, ReauthRequiredError, UnknownSessionError } from '../../shared/errors.js'
import { safeEqual } from '../../shared/crypto.js'
import type { IndexedSession } from '../../shared/user-index.js'
import { clearSessionCookie, currentSession, type CurrentSession, type IdpContext } from '../context.js'
import { csrfToken, isValidCsrf } from '../csrf.js'
import { deviceName } from '../device-name.js'
import { confirmPassword, FRESH_AUTH_MS, hasFreshAuth } from '../fresh-auth.js'
import { loginReturningTo } from '../local-return.js'

interface EndBody { csrf?: string; session?: string; password?: string }

const endBodySchema = {
  type: 'object',
  properties: {
    csrf: { type: 'string', maxLength: 128 },
    session: { type: 'string', maxLength: 64 },
    password: { type: 'string', maxLength: 1024 },
  },
} as const

const METHOD_NAMES: Readonly<Record<string, string>> = { pwd: 'password', otp: 'one-time code', hwk: 'passkey' }

export const sessionsRoutes: FastifyPluginAsync<{ ctx: IdpContext }> = async (app, { ctx }) => {
  app.get<{ Querystring: { ended?: unknown } }>('/sessions', async (req, reply) => {
    const current = await currentSession(ctx, req)
    if (current === undefined) return reply.header('cache-control', 'no-store').redirect(loginReturningTo('/sessions'), 302)
    return renderSessions(ctx, reply, current, { notice: endedNotice(req.query.ended) })
  })

  /** The password typed again: ending other sessions is open for 5 minutes. Regulated as the login form is. */
  app.post<{ Body: EndBody }>('/sessions/confirm', { schema: { body: endBodySchema } }, async (req, reply) => {
    const current = await signedInWithCsrf(ctx, req, reply)
    if (current === undefined) return reply
    const refused = await confirmPassword(ctx, req, current, req.body?.password ?? '')
    if (refused !== undefined) return renderSessions(ctx, reply, current, { status: refused.statusCode, error: 'Incorrect password.' })
    return reply.header('cache-control', 'no-store').redirect('/sessions', 303)
  })

  app.post<{ Body: EndBody }>('/sessions/end', { schema: { body: endBodySchema } }, async (req, reply) => {
    const current = await signedInWithCsrf(ctx, req, reply)
    if (current === undefined) return reply
    const username = current.session.user.username
    const given = req.body?.session ?? ''
    const target = (await ctx.userIndex.sessions(username)).find((s) => safeEqual(s.summary.id, given))
    if (target === undefined) throw new UnknownSessionError('no live session of this user has that fingerprint')
    if (target.sid !== current.handle.sid && !(await isFresh(ctx, current))) throw new ReauthRequiredError('ending another session with no recent authentication')
    await end(ctx, username, target.sid)
    if (target.sid !== current.handle.sid) {
      req.log.info({ ended: 1 }, 'session ended by its user')
      return reply.header('cache-control', 'no-store').redirect('/sessions?ended=1', 303)
    }
    req.log.info('signed out from the sessions page')
    clearSessionCookie(ctx, reply)
    return reply.header('cache-control', 'no-store').view('signed-out.eta', {
      title: 'Signed out',
      message: 'You signed out this session. You are signed out of every application in this browser.',
    })
  })

  app.post<{ Body: EndBody }>('/sessions/end-others', { schema: { body: endBodySchema } }, async (req, reply) => {
    const current = await signedInWithCsrf(ctx, req, reply)
    if (current === undefined) return reply
    if (!(await isFresh(ctx, current))) throw new ReauthRequiredError('ending other sessions with no recent authentication')
    const username = current.session.user.username
    let ended = 0
    for (const s of await ctx.userIndex.sessions(username)) {
      if (s.sid === current.handle.sid) continue
      await end(ctx, username, s.sid)
      ended++
    }
    req.log.info({ ended }, 'other sessions ended by their user')
    return reply.header('cache-control', 'no-store').redirect(`/sessions?ended=${ended}`, 303)
  })
}

/**
 * The signed-in session of a form post whose CSRF field is bound to it, or undefined once the
 * browser has been sent to sign in (no session: nothing to end, and nothing changes).
 */
async function signedInWithCsrf(ctx: IdpContext, req: FastifyRequest<{ Body: EndBody }>, reply: FastifyReply): Promise<CurrentSession | undefined> {
  const current = await currentSession(ctx, req)
  if (current === undefined) {
    reply.header('cache-control', 'no-store').redirect(loginReturningTo('/sessions'), 303)
    return undefined
  }
  if (!isValidCsrf(ctx.config.sessionSecret, 'sessions', current.cookieValue, req.body?.csrf)) {
    throw new CsrfError('sessions form without a valid CSRF token')
  }
  return current
}

/** A factor proved in the last 5 minutes: at sign-in (the signed identity's times) or at /sessions/confirm. */
async function isFresh(ctx: IdpContext, current: CurrentSession): Promise<boolean> {
  const since = Date.now() - FRESH_AUTH_MS
  return current.session.auth.methods.some((m) => m.at > since) || hasFreshAuth(ctx, current.session.sid)
}

async function renderSessions(ctx: IdpContext, reply: FastifyReply, current: CurrentSession, page: { status?: number; notice?: string; error?: string }): Promise<FastifyReply> {
  const sessions = await ctx.userIndex.sessions(current.session.user.username)
  return reply.code(page.status ?? 200).header('cache-control', 'no-store').view('sessions.eta', {
    title: 'Your sessions',
    sessions: view(sessions, current),
    csrf: csrfToken(ctx.config.sessionSecret, 'sessions', current.cookieValue),
    fresh: await isFresh(ctx, current),
    notice: page.notice,
    error: page.error,
  })
}

/** Ends a session everywhere (replicated, as a logout is), then drops it from the user's index. */
async function end(ctx: IdpContext, username: string, sid: string): Promise<void> {
  await ctx.sessions.destroy(sid)
  await ctx.userIndex.remove(username, sid)
}

interface SessionView {
  readonly fingerprint: string
  readonly device: string
  readonly userAgent: string
  readonly signedInAt: string
  readonly lastSeenAt: string
  readonly apps: readonly string[]
  readonly methods: string
  readonly current: boolean
}

/** This session first, then the others, newest first. No session id leaves this function. */
function view(sessions: readonly IndexedSession[], current: CurrentSession): SessionView[] {
  return sessions
    .map((s): SessionView => ({
      fingerprint: s.summary.id,
      device: deviceName(s.summary.userAgent),
      userAgent: s.summary.userAgent,
      signedInAt: new Date(s.summary.createdAt).toISOString(),
      lastSeenAt: new Date(s.summary.lastSeenAt).toISOString(),
      apps: s.summary.apps,
      methods: s.methods.map((m) => METHOD_NAMES[m.method] ?? m.method).join(' and '),
      current: s.sid === current.handle.sid,
    }))
    .sort((a, b) => Number(b.current) - Number(a.current) || b.signedInAt.localeCompare(a.signedInAt))
}

function endedNotice(value: unknown): string | undefined {
  if (typeof value !== 'string' || !/^\d{1,4}$/.test(value)) return undefined
  const n = Number(value)
  if (n === 0) return 'You had no other sessions to sign out.'
  return `${n} session${n === 1 ? ' is' : 's are'} signed out everywhere.`
}
