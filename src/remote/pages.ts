/** The plugin's own answers (403, 401, 503): short, self-contained, no template engine of the app's needed. */
import { TesseraError } from '../shared/errors.js'
import { acceptsHtml, escapeHtml } from '../shared/http.js'

/** A link the page offers to go on: "Try again" on this origin, or "Sign in" at the IdP. */
export interface WayOn {
  readonly href: string
  readonly label: string
}

/** An answer ready for any framework to send. */
export interface ErrorAnswer {
  readonly status: number
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
}

/** A TesseraError as an answer: HTML for browsers (with `wayOn` as a link), JSON otherwise. */
export function errorAnswer(accept: string | undefined, err: TesseraError, extra: Readonly<Record<string, string>> = {}, wayOn?: WayOn): ErrorAnswer {
  const headers = { 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' }
  if (!acceptsHtml(accept)) {
    return { status: err.statusCode, headers: { ...headers, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify({ code: err.code, message: err.message, ...extra }) }
  }
  const link = wayOn === undefined ? '' : `<p><a href="${escapeHtml(wayOn.href)}">${escapeHtml(wayOn.label)}</a></p>`
  return {
    status: err.statusCode,
    headers: { ...headers, 'content-type': 'text/html; charset=utf-8' },
    body: `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
      `<title>${escapeHtml(err.message)}</title></head><body style="font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem">` +
      `<h1 style="font-size:1.4rem">${escapeHtml(err.message)}</h1><p style="color:#5b6570">Error ${err.statusCode} · <code>${err.code}</code></p>${link}</body></html>`,
  }
}

/**
 * Whether a header describes the body a route built (its type, encoding, length, disposition,
 * validators): dropped when Tessera's error answer replaces that body, so that a `Content-Encoding:
 * gzip` or a `Content-Disposition: attachment` is not left on a plain page. The app's CSP stays.
 */
export function describesBody(name: string): boolean {
  const n = name.toLowerCase()
  return (n.startsWith('content-') && !n.startsWith('content-security-policy')) || n === 'etag' || n === 'last-modified' || n === 'transfer-encoding' || n === 'accept-ranges'
}

const INTERNAL_MESSAGE = 'Something went wrong. Please try again.'

/** `err` if the client may see it (a Redis outage's 503), else a plain 500 that tells nothing. */
export function exposedError(err: unknown): TesseraError {
  return err instanceof TesseraError && err.expose ? err : new TesseraError('TESSERA_ERR_INTERNAL', 500, INTERNAL_MESSAGE)
}
