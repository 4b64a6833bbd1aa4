/** The bench's own redis-server on a free loopback port (no persistence), with its CPU counter. */
import { spawn, type ChildProcess } from 'node:child_process'
import { freePort } from '../../test/helpers/net.js'
import { Redis } from 'ioredis'

export interface BenchRedis {
  readonly url: string
  /** The server's own CPU time (user + system) so far, in ms, from INFO cpu. */
  cpuMs(): Promise<number>
  /** Commands executed so far, by name (INFO commandstats). */
  commands(): Promise<Record<string, number>>
  /** Keys and memory, for the report. */
  info(): Promise<{ keys: number; usedMemoryMb: number }>
  stop(): Promise<void>
}

export { freePort }

export async function startRedis(): Promise<BenchRedis> {
  const port = await freePort('127.0.0.1')
  const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const spawned = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`cannot start redis-server (is it installed?): ${err.message}`))))
  const client = new Redis(port, '127.0.0.1', { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 })
  client.on('error', () => {}) // refused while the server starts: retried below
  let up = false
  for (let i = 0; i < 100 && !up; i++) {
    try {
      await Promise.race([client.connect().then(() => client.ping()), spawned])
      up = true
    } catch (err) {
      if ((err as Error).message.startsWith('cannot start')) throw err
      client.disconnect()
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  if (!up) throw new Error(`redis-server did not start on port ${port}`)
  const field = (text: string, name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN)
  return {
    url: `redis://127.0.0.1:${port}`,
    cpuMs: async () => {
      const text = await client.info('cpu')
      return (field(text, 'used_cpu_user') + field(text, 'used_cpu_sys')) * 1000
    },
    commands: async () => {
      const text = await client.info('commandstats')
      const out: Record<string, number> = {}
      for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2])
      return out
    },
    info: async () => {
      const [keys, memory] = await Promise.all([client.dbsize(), client.info('memory')])
      return { keys, usedMemoryMb: field(memory, 'used_memory') / 1048576 }
    },
    stop: async () => {
      client.disconnect()
      if (child.exitCode !== null) return
      await new Promise<void>((resolve) => { child.once('exit', () => resolve()); child.kill('SIGKILL') })
    },
  }
}
