/** The password check every form shares (sign-in, and typing it again before a sensitive change). */
import type { FastifyRequest } from 'fastify'
import type { SessionUser } from '../shared/session.js'
import type { IdpContext } from './context.js'
import { isKnownDevice } from './known-device.js'

/**
 * Regulation (ASVS V6.3.1) around the argon2 check: a banned attempt checks no password and is
 * answered after the same delay as a wrong one, with the same message. Redis down: 503, never an
 * unchecked sign-in.
 */
export async function checkPassword(ctx: IdpContext, req: FastifyRequest, username: string, password: string): Promise<SessionUser | 'banned' | 'wrong'> {
  const knownDevice = isKnownDevice(ctx.config.sessionSecret, req.cookies[ctx.cookies.knownDevice], username)
  const permit = await ctx.regulation.admit(username, req.ip, knownDevice)
  if (permit === 'banned') {
    await ctx.pace.wait()
    return 'banned'
  }
  let user: SessionUser | undefined
  try {
    const started = performance.now()
    user = await ctx.config.users.verify(username, password)
    ctx.pace.record(performance.now() - started)
  } finally {
    await ctx.regulation.settle(permit, user !== undefined)
  }
  return user ?? 'wrong'
}
