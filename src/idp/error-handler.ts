/** One error answer for the IdP: our typed errors as they are, Fastify's 4xx as they are, anything else a bare 500. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, NotFoundError, TesseraError } from '../shared/errors.js'
import { wantsHtml } from './context.js'
import { localReturn, loginReturningTo } from './local-return.js'

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | TesseraError, req, reply) => {
    if (err instanceof TesseraError && err.expose) {
      const level = err.statusCode >= 500 ? 'warn' : 'info'
      req.log[level]({ code: err.code, detail: err.detail }, 'request rejected')
      return answer(req, reply, err.statusCode, err.code, err.message)
    }
    const status = typeof err.statusCode === 'number' ? err.statusCode : 500
    if (status >= 400 && status < 500) {
      // Fastify's own 4xx (validation, body limit, bad content type) carry generic, safe messages.
      req.log.info({ code: err.code, status }, 'request rejected')
      return answer(req, reply, status, 'TESSERA_ERR_BAD_REQUEST', 'The request was not understood.')
    }
    req.log.error({ err }, 'unexpected error')
    return answer(req, reply, 500, 'TESSERA_ERR_INTERNAL', 'Something went wrong on our side.')
  })
  app.setNotFoundHandler((req, reply) => {
    const err = new NotFoundError()
    return answer(req, reply, err.statusCode, err.code, err.message)
  })
}

/**
 * A request-target that is not a path (absolute-form `http://host/login`, or `*`) is no browser's:
 * refused with 400, as the apps refuse it (remote/core.ts), rather than routed by its path.
 */
export function refuseNonPathTargets(app: FastifyInstance): void {
  // Callback style: an async hook costs a promise on every request.
  app.addHook('onRequest', (req, _reply, done) => {
    if (req.url.startsWith('/')) done()
    else done(new BadRequestError('Bad request.', 'request target is not origin-form'))
  })
}

/**
 * Fastify's `frameworkErrors`: a request Fastify refuses before routing it (a malformed percent-escape
 * in the path, `/%zz`) gets 400 TESSERA_ERR_BAD_REQUEST like any other bad request, logged, and never
 * Fastify's own body, which echoes the request-target. No hook runs for it and its reply has no
 * decorators, so the headers are set here and the page is rendered through the instance (`app()`:
 * the option is given before the instance exists).
 */
export function frameworkErrorHandler(app: () => FastifyInstance, headers: Readonly<Record<string, string>>): (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => void {
  return (err, req, reply) => {
    req.log.info({ code: err.code, status: 400 }, 'request rejected')
    const status = 400
    const code = 'TESSERA_ERR_BAD_REQUEST'
    const message = 'The request was not understood.'
    reply.code(status).headers(headers).header('cache-control', 'no-store')
    const json = (): void => { reply.type('application/json; charset=utf-8').send(JSON.stringify({ code, message })) }
    if (!wantsHtml(req)) { json(); return }
    app().view('error.eta', { title: 'Error', status, code, message }).then(
      (html: string) => { reply.type('text/html; charset=utf-8').send(html) },
      (renderErr: unknown) => { req.log.error({ err: renderErr }, 'error page not rendered'); json() },
    )
  }
}

/** Sign in, then back to the IdP page the request came from when it is one a sign-in may return to. */
function signInLink(url: string): string {
  const back = localReturn(`/${url.split(/[/?]/)[1] ?? ''}`)
  return back === undefined ? '/login' : loginReturningTo(back)
}

/**
 * A link on from an error page, where there is a better one than the start page: sign in and back
 * (a 401), or the sign-in's current second step (a second-step form of an earlier sign-in, posted
 * after another tab signed in again: its CSRF token names the sign-in it was made for).
 */
function wayOn(url: string, code: string): { signIn?: string; step?: string } {
  if (code === 'TESSERA_ERR_UNAUTHENTICATED') return { signIn: signInLink(url) }
  if (code === 'TESSERA_ERR_CSRF' && url.startsWith('/login/second-factor')) return { step: '/login/second-factor' }
  return {}
}

function answer(req: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  reply.code(status).header('cache-control', 'no-store')
  // A form of the security or sessions page posted after the session ended elsewhere: a way to sign
  // in and come back to that page, not only to the start page.
  if (wantsHtml(req)) return reply.view('error.eta', { title: 'Error', status, code, message, ...wayOn(req.url, code) })
  return reply.send({ code, message })
}
