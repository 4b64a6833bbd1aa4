/** The commands clients send to a test Redis while something runs, seen through MONITOR. */
import { connect } from 'node:net'
import type { TestRedis } from './redis-server.js'

// One line of MONITOR's feed: `+<time> [<db> <client address, or lua>] "<command>" "<arg>" …`.
const FEED_LINE = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "((?:[^"\\]|\\.)*)"(?: "((?:[^"\\]|\\.)*)")?/

/**
 * The names (lower case) of the commands every client sent to `redis` while `during` ran, in order.
 * A script's own calls come from "lua" and are left out: they are not round trips.
 *
 * MONITOR is read on a plain socket, not through ioredis's monitor mode: there, feed lines that
 * arrive in the same chunk as MONITOR's OK (another client's ready check) were taken for replies
 * ("Command queue state error"), and the failed monitor client, which the test's Redis does not
 * track, kept reconnecting after that Redis stopped, so the test process never ended.
 */
export async function commandsSent(redis: TestRedis, during: () => Promise<void>): Promise<string[]> {
  const socket = connect(Number(new URL(redis.url).port), '127.0.0.1')
  const marker = redis.client()
  const seen: string[] = []
  // Counting runs from the start marker to the end marker, as MONITOR shows them.
  let counting = false
  let started: (() => void) | undefined
  let marked: (() => void) | undefined
  let monitoring: (() => void) | undefined
  let failed: ((err: Error) => void) | undefined
  let pending = ''
  socket.setEncoding('utf8')
  socket.on('error', (err) => failed?.(err))
  socket.on('data', (chunk: string) => {
    pending += chunk
    for (let end = pending.indexOf('\r\n'); end >= 0; end = pending.indexOf('\r\n')) {
      const line = pending.slice(0, end)
      pending = pending.slice(end + 2)
      if (line === '+OK') { monitoring?.(); continue }
      const m = FEED_LINE.exec(line)
      if (m === null || m[1] === 'lua') continue
      const name = (m[2] as string).toLowerCase()
      if (name === 'echo' && m[3] === 'start') { counting = true; started?.() } else if (name === 'echo' && m[3] === 'mark') marked?.()
      else if (counting) seen.push(name)
    }
  })
  try {
    await new Promise<void>((done, fail) => { monitoring = done; failed = fail; socket.write('MONITOR\r\n') })
    await new Promise<void>((done) => { started = done; void marker.echo('start') })
    await during()
    // A marker sent after the work: once MONITOR shows it, every command before it has arrived.
    await new Promise<void>((done) => { marked = done; void marker.echo('mark') })
    return seen
  } finally {
    socket.destroy()
    marker.disconnect()
  }
}
