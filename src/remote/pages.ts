/** The plugin's own answers (403, 401, 503): short, self-contained, no template engine of the app's needed. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { TesseraError } from '../shared/errors.js'

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

function wantsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept
  return accept !== undefined && accept.includes('text/html')
}

/** A link the page offers to go on: "Try again" on this origin, or "Sign in" at the IdP. */
export interface WayOn {
  readonly href: string
  readonly label: string
}

/** Answers with a TesseraError: HTML for browsers (with `wayOn` as a link), JSON otherwise. */
export function sendError(req: FastifyRequest, reply: FastifyReply, err: TesseraError, extra: Record<string, string> = {}, wayOn?: WayOn): FastifyReply {
  reply.code(err.statusCode).header('cache-control', 'no-store').header('referrer-policy', 'no-referrer')
  if (!wantsHtml(req)) return reply.send({ code: err.code, message: err.message, ...extra })
  const link = wayOn === undefined ? '' : `<p><a href="${escape(wayOn.href)}">${escape(wayOn.label)}</a></p>`
  return reply.type('text/html; charset=utf-8').send(
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escape(err.message)}</title></head><body style="font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">` +
    `<h1 style="font-size:1.4rem">${escape(err.message)}</h1><p style="color:#5b6570">Error ${err.statusCode} · <code>${err.code}</code></p>${link}</body></html>`)
}
