/** A real redis-server per test file, on a free loopback port; stop and start it again to test an outage. */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort } from './net.js'

export interface TestRedis {
  readonly port: number
  readonly url: string
  stop(): Promise<void>
  start(): Promise<void>
  /** SIGSTOP: connections stay open and nothing is answered, as with a hung or partitioned server. */
  freeze(): void
  /** SIGCONT after `freeze()`. */
  thaw(): void
  /** A plain client for assertions on what is stored. */
  client(): Redis
}

/** With `persistent`, an append-only file in a temp dir lets data survive `stop()` + `start()`. */
export async function startRedis(opts: { persistent?: boolean } = {}): Promise<TestRedis> {
  const port = await freePort('127.0.0.1')
  const persistence = opts.persistent === true
    ? ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', mkdtempSync(join(tmpdir(), 'tessera-redis-'))]
    : ['--appendonly', 'no']
  let child: ChildProcess | undefined
  const clients: Redis[] = []
  const start = async (): Promise<void> => {
    const c = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence], { stdio: 'ignore' })
    child = c
    // No redis-server on PATH: say so at once rather than after 5 s of refused connections.
    const cannotStart = new Promise<never>((_, reject) => c.once('error', (err) => reject(new CannotStartError(err))))
    cannotStart.catch(() => {}) // an error after start-up is the caller's next command's to report
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {}) // refused while the server starts: expected, retried below
    for (let i = 0; i < 100; i++) {
      try {
        await Promise.race([probe.connect().then(() => probe.ping()), cannotStart])
        probe.disconnect()
        return
      } catch (err) {
        probe.disconnect()
        if (err instanceof CannotStartError) throw err
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    throw new Error(`redis-server did not start on port ${port}`)
  }
  const stop = async (): Promise<void> => {
    const c = child
    if (c === undefined || c.exitCode !== null) return
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL') })
    child = undefined
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    start,
    freeze: () => { child?.kill('SIGSTOP') },
    thaw: () => { child?.kill('SIGCONT') },
    stop: async () => { for (const c of clients) c.disconnect(); await stop() },
    client: () => { const c = new Redis(port, '127.0.0.1'); clients.push(c); return c },
  }
}

class CannotStartError extends Error {
  constructor(cause: Error) {
    super(`cannot start redis-server (is it installed?): ${cause.message}`)
  }
}
