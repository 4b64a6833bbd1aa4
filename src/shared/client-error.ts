/**
 * Fastify's `clientErrorHandler` for Tessera's own servers (the IdP, the gate). A request Node's HTTP
 * parser refuses before any route sees it (an unknown method, headers over Node's limit, a malformed
 * request line), or one that has not fully arrived within the server's `requestTimeout` (a stalled
 * body), gets Tessera's JSON error with its stable code, like every other refusal, instead of
 * Fastify's own body. The connection is closed after it, as Node and Fastify do.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'

const MESSAGES: Readonly<Record<number, string>> = {
  400: 'The request was not understood.',
  408: 'The request took too long to arrive.',
  431: 'The request headers are too large.',
}

// Written by this handler itself: a caller's header of the same name would make a second one.
const OWN_HEADERS = new Set(['content-type', 'content-length', 'cache-control', 'connection'])

export type ClientErrorHandler = (err: Error & { code?: string }, socket: Socket) => void

/**
 * The handler, adding `headers` to every answer it writes (the IdP passes its security headers, so
 * these answers carry them as its routes' do; shared/ cannot import them from idp/).
 */
export function clientErrorHandlerWith(headers: Readonly<Record<string, string>> = {}): ClientErrorHandler {
  // Worked out once: the headers never change per answer.
  const extra = Object.entries(headers)
    .filter(([name]) => !OWN_HEADERS.has(name.toLowerCase()))
    .map(([name, value]) => {
      // A line break here would let a header value write its own headers.
      if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new TypeError(`header ${JSON.stringify(name)} holds a line break`)
      return `${name}: ${value}\r\n`
    })
    .join('')
  return (err, socket) => {
    // A reset connection has nobody left to answer.
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
    const body = JSON.stringify({ code: 'TESSERA_ERR_BAD_REQUEST', message: MESSAGES[status] })
    if (socket.writable) {
      socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${extra}connection: close\r\n\r\n${body}`)
    }
    socket.destroy()
  }
}

/** The handler with no headers beyond its own (the gate's: apps set their own browser headers). */
export const clientErrorHandler: ClientErrorHandler = clientErrorHandlerWith()
