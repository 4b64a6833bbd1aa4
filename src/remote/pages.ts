/** The plugin's own answers (403, 401, 503): short, self-contained, no template engine of the app's needed. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TesseraError } from '../shared/errors.js'

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept
  return accept !== undefined && accept.includes('text/html')
}

/** Answers with a TesseraError: HTML for browsers, JSON otherwise. `retryUrl` is a same-origin link the user may follow. */
export function sendError(req: FastifyRequest, reply: FastifyReply, err: TesseraError, extra: Record<string, string> = {}, retryUrl?: string): FastifyReply {
  reply.code(err.statusCode).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
  if (!wantsHtml(req)) return reply.send({ code: err.code, message: err.message, ...extra })
  const retry = retryUrl === undefined ? '' : `<p><a href="${escape(retryUrl)}">Try again</a></p>`
  return reply.type('text/html; charset=utf-8').send(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escape(err.message)}</title></head><body style="font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">` +
    `<h1 style="font-size:1.4rem">${escape(err.message)}</h1><p style="color:#5b6570">Error ${err.statusCode} · <code>${err.code}</code></p>${retry}</body></html>`)
}
