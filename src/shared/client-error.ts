/**
 * Fastify's `clientErrorHandler` for Tessera's own servers (the IdP, the gate). A request Node's HTTP
 * parser refuses before any route sees it (an unknown method, headers over Node's limit, a malformed
 * request line) gets Tessera's JSON error with its stable code, like every other refusal, instead of
 * Fastify's own body. The connection is closed after it, as Node and Fastify do.
 */
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'

const MESSAGES: Readonly<Record<number, string>> = {
  400: 'The request was not understood.',
  408: 'The request took too long to arrive.',
  431: 'The request headers are too large.',
}

export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  // A reset connection has nobody left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
  const body = JSON.stringify({ code: 'TESSERA_ERR_BAD_REQUEST', message: MESSAGES[status] })
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n${body}`)
  }
  socket.destroy()
}
