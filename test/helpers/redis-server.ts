/** A real redis-server per test file, on a free loopback port; stop and start it again to test an outage. */
import { spawn, type ChildProcess } from 'node:child_process'
import { Redis } from 'ioredis'
import { freePort } from './net.js'

export interface TestRedis {
  readonly port: number
  readonly url: string
  stop(): Promise<void>
  start(): Promise<void>
  /** A plain client for assertions on what is stored. */
  client(): Redis
}

export async function startRedis(): Promise<TestRedis> {
  const port = await freePort('127.0.0.1')
  let child: ChildProcess | undefined
  const clients: Redis[] = []
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    const probe = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
    probe.on('error', () => {}) // refused while the server starts: expected, retried below
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect()
        await probe.ping()
        probe.disconnect()
        return
      } catch {
        probe.disconnect()
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
    stop: async () => { for (const c of clients) c.disconnect(); await stop() },
    client: () => { const c = new Redis(port, '127.0.0.1'); clients.push(c); return c },
  }
}
