/**
 * A second line of defence behind the CSRF tokens: what the browser itself says about where a
 * state-changing request comes from (a page cannot forge these headers). The CSRF token stays the
 * rule; this only refuses what a browser has marked as sent by another site. A request without
 * these headers (curl, an old browser) falls back to the token.
 *
 * - `Sec-Fetch-Site` (Fetch Metadata): only `same-origin` (our own form) and `none` (the user
 *   acted, e.g. from the address bar) pass. `same-site` is refused too: a sibling subdomain is
 *   another application, not this sign-in service.
 * - `Origin`: it must be `PUBLIC_URL`'s origin. `Origin: null` gives no verdict, because every IdP
 *   page sets `Referrer-Policy: no-referrer` and the Fetch standard then makes a browser send
 *   `Origin: null` on that page's own form posts; refusing it would refuse our own login form. A
 *   browser that sends `null` also sends `Sec-Fetch-Site` (every current one does), which still
 *   catches a cross-site `null` (a sandboxed frame, a `data:` page, a no-referrer attacker page).
 */
import type { FastifyInstance } from 'fastify'
import type { IncomingHttpHeaders } from 'node:http'
import { CrossSiteError } from '../shared/errors.js'

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const ALLOWED_FETCH_SITES = new Set(['same-origin', 'none'])

/** Why the browser's own headers show `headers` as sent by another site; undefined when they do not. */
export function crossSiteReason(headers: IncomingHttpHeaders, ownOrigin: string): string | undefined {
  const site = headers['sec-fetch-site']
  if (site !== undefined && !(typeof site === 'string' && ALLOWED_FETCH_SITES.has(site))) return `Sec-Fetch-Site: ${String(site)}`
  const origin = headers.origin
  if (origin === undefined || origin === 'null') return undefined
  if (originOf(origin) !== ownOrigin) return `Origin: ${origin.slice(0, 200)}`
  return undefined
}

function originOf(value: string): string | undefined {
  try {
    return new URL(value).origin
  } catch {
    return undefined // several Origin headers joined, or garbage: not ours
  }
}

/** Refuses (403) every unsafe-method request the browser marks as cross-site, before its body is read. */
export function installCrossSiteCheck(app: FastifyInstance, ownOrigin: string): void {
  // Callback style: an async hook costs a promise on every request, for no await.
  app.addHook('onRequest', (req, reply, done) => {
    const reason = SAFE_METHODS.has(req.method) ? undefined : crossSiteReason(req.headers, ownOrigin)
    done(reason === undefined ? undefined : new CrossSiteError(`${req.method} ${req.url.split('?')[0] ?? ''} from another site (${reason})`))
  })
}
