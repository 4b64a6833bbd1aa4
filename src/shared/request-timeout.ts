/**
 * Fastify options that bound how long a request may take to arrive (headers and body), for Tessera's
 * own servers (the IdP, the gate). Fastify's `requestTimeout` is 0 by default: a client that sends
 * `Content-Length: 100` and 10 bytes would hold a socket for ever (slowloris). Past the limit Node
 * emits ERR_HTTP_REQUEST_TIMEOUT, which `clientErrorHandler` (client-error.ts) answers with 408 and a
 * closed socket.
 */
import type { ServerOptions } from 'node:http'

/**
 * Tessera's bodies are small (forms, 64 KiB at most): 60 s is ample even on a slow link. Not less:
 * `headersTimeout` must equal it (below), and a shorter one would answer an unsolicited 408 to a
 * connection a proxy opened ahead of need and left idle, sooner than Node's own default (60 s).
 */
export const REQUEST_TIMEOUT_MS = 60_000

export function requestTimeoutOptions(ms: number = REQUEST_TIMEOUT_MS): { requestTimeout: number; http: ServerOptions } {
  if (!Number.isInteger(ms) || ms < 1) throw new RangeError(`request timeout must be a positive integer of ms, not ${ms}`)
  return {
    requestTimeout: ms,
    http: {
      // Node looks for requests past their timeout only this often (30 s by default), so a stalled
      // one is answered between `ms` and `ms` + this.
      connectionsCheckingInterval: Math.max(10, Math.min(5_000, Math.floor(ms / 4))),
      // Were Node's default (60 s) longer than requestTimeout, Node 24 would never time out a
      // request whose headers have arrived (test/idp/raw-requests.test.ts fails without this);
      // createServer itself refuses headersTimeout > requestTimeout when both are given to it.
      headersTimeout: ms,
    },
  }
}
