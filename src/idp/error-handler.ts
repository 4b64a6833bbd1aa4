/** One error answer for the IdP: our typed errors as they are, Fastify's 4xx as they are, anything else a bare 500. */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BadRequestError, NotFoundError, TesseraError } from '../shared/errors.js'
import { wantsHtml } from './context.js'

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

function answer(req: FastifyRequest, reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  reply.code(status).header('cache-control', 'no-store')
  if (wantsHtml(req)) return reply.view('error.eta', { title: 'Error', status, code, message })
  return reply.send({ code, message })
}
