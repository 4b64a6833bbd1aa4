/**
 * Browser security headers for every IdP answer, from `helmet`, worked out once at start-up.
 *
 * @fastify/helmet calls `helmet(options)` on every request, rebuilding each middleware and
 * re-parsing the CSP: about 7% of the IdP's CPU in the hand-over benchmark. The headers never change
 * per request here (no CSP nonces: the only scripts are files served by the IdP itself, for passkeys),
 * so they are computed once and copied.
 */
import helmet, { type HelmetOptions } from 'helmet'
import type { FastifyInstance } from 'fastify'

export function securityHeaders(knownRemoteHosts: readonly string[], https: boolean): Record<string, string> {
  const options: HelmetOptions = {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        // Passkeys need script (navigator.credentials): only the IdP's own files, never inline.
        scriptSrc: ["'self'"],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        // Chrome applies form-action to the redirect after a POST, so the allowed apps are listed.
        formAction: ["'self'", ...knownRemoteHosts],
        frameAncestors: ["'none'"],
        ...(https ? { upgradeInsecureRequests: [] } : {}),
      },
    },
    // Pages that carry a token (the hand-over redirect) must not leak it in a Referer.
    referrerPolicy: { policy: 'no-referrer' },
    strictTransportSecurity: https ? { maxAge: 31_536_000 } : false,
  }
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: string | number) => { headers[name.toLowerCase()] = String(value) },
    removeHeader: (name: string) => { delete headers[name.toLowerCase()] },
  }
  helmet(options)({} as never, res as never, () => {})
  return headers
}

/**
 * Adds the headers to every answer of `app`, errors, redirects and 404s included, with
 * `Cache-Control: no-store`: nearly every IdP answer is personal (a page for one session, a redirect
 * after a sign-in or logout), so none is cached unless its route says so (the static files set
 * their own `Cache-Control`, which replaces this one).
 */
export function installSecurityHeaders(app: FastifyInstance, headers: Record<string, string>): void {
  const all = { ...headers, 'cache-control': 'no-store' }
  // Callback style: an async hook costs a promise on every request, for no await.
  app.addHook('onRequest', (req, reply, done) => {
    reply.headers(all)
    done()
  })
}
