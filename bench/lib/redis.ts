/**
 * The bench's Redis: the tests' own redis-server on a free loopback port (no persistence), plus what
 * the bench reads from it: its CPU time, commands by name, keys and memory.
 */
import type { Redis } from 'ioredis'
import { startRedis } from '../../test/helpers/redis-server.js'

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

export async function startBenchRedis(): Promise<BenchRedis> {
  const redis = await startRedis()
  const client = redis.client()
  return {
    url: redis.url,
    cpuMs: () => redisCpuMs(client),
    commands: async () => {
      const text = await client.info('commandstats')
      const out: Record<string, number> = {}
      for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out[m[1] as string] = Number(m[2])
      return out
    },
    info: async () => ({ keys: await client.dbsize(), usedMemoryMb: await redisUsedMemoryMb(client) }),
    stop: () => redis.stop(),
  }
}

/** A Redis server's own CPU time (user + system) so far, in ms, from INFO cpu. */
export async function redisCpuMs(client: Redis): Promise<number> {
  const text = await client.info('cpu')
  return (infoField(text, 'used_cpu_user') + infoField(text, 'used_cpu_sys')) * 1000
}

/** A Redis server's used memory, in MB, from INFO memory. */
export async function redisUsedMemoryMb(client: Redis): Promise<number> {
  return infoField(await client.info('memory'), 'used_memory') / 1048576
}

function infoField(text: string, name: string): number {
  return Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(text)?.[1] ?? NaN)
}
