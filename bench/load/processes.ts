/**
 * `npm run load`'s processes: the IdP replicas (`node dist/src/server.js`, configured by environment
 * alone), the app children, the Redis topology from the test helpers, and their CPU and RSS from /proc.
 */
import { spawn, fork, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { RedisConnection } from '../../src/shared/redis.js'
import { redisCpuMs, redisUsedMemoryMb } from '../lib/redis.js'
import { round } from '../lib/stats.js'
import type { AppChild } from './app.js'

const SERVER_JS = fileURLToPath(new URL('../../src/server.js', import.meta.url))
const APP_JS = fileURLToPath(new URL('app.js', import.meta.url))

export interface Child { name: string; child: ChildProcess; ready: Promise<void> }

export function startIdp(name: string, port: number, idpEnv: Record<string, string>, dir: string): Child {
  const logFd = openSync(join(dir, `${name}.log`), 'a')
  // cwd: the temp dir, so no .env of the checkout is read; the environment is all the configuration.
  const child = spawn(process.execPath, [SERVER_JS], { env: { ...idpEnv, PORT: String(port) }, cwd: dir, stdio: ['ignore', logFd, logFd] })
  closeSync(logFd)
  process.on('exit', () => child.kill('SIGKILL')) // never outlive the driver, even if it crashes
  return { name, child, ready: Promise.resolve() }
}

export function startApp(c: AppChild, dir: string): Child {
  const logFd = openSync(join(dir, `${c.host}.log`), 'a')
  const child = fork(APP_JS, [], {
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production', LOAD_APP: JSON.stringify(c) },
    cwd: dir, stdio: ['ignore', logFd, logFd, 'ipc'],
  })
  closeSync(logFd)
  const ready = new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve())
    child.once('exit', (code) => reject(new Error(`${c.name} exited (${code}); see ${dir}`)))
  })
  return { name: c.name, child, ready }
}

export async function stopChild(c: Child): Promise<void> {
  const p = c.child
  if (p.exitCode !== null || p.signalCode !== null) return
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()))
  p.kill('SIGTERM')
  const timer = setTimeout(() => p.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

export interface RedisInfo { keys: number; used_memory_mb: number; cpu_ms: number }

export interface Topology {
  idpEnv: Record<string, string>
  appRedis: string | RedisConnection
  /** Keys, used memory and the servers' own CPU time so far (INFO cpu), summed over the data nodes. */
  info(): Promise<RedisInfo>
  stop(): Promise<void>
}

/** The Redis the run uses, from the test helpers (real servers on free loopback ports). */
export async function startTopology(kind: 'single' | 'cluster' | 'sentinel'): Promise<Topology> {
  if (kind === 'cluster') {
    const { startCluster } = await import('../../test/helpers/redis-topologies.js')
    const c = await startCluster()
    return { idpEnv: { REDIS_CLUSTER_NODES: c.nodesEnv }, appRedis: { clusterNodes: c.nodes }, info: () => infoOf(c.nodes.map((n) => n.port)), stop: () => c.stop() }
  }
  if (kind === 'sentinel') {
    const { startSentinelGroup } = await import('../../test/helpers/redis-topologies.js')
    const g = await startSentinelGroup()
    return {
      idpEnv: { REDIS_SENTINELS: g.sentinelsEnv, REDIS_SENTINEL_NAME: g.name, REDIS_WAIT_REPLICAS: '1' },
      appRedis: { sentinels: g.sentinels, sentinelName: g.name },
      info: async () => infoOf([await g.primaryPort()]),
      stop: () => g.stop(),
    }
  }
  const { startRedis } = await import('../../test/helpers/redis-server.js')
  const r = await startRedis()
  return { idpEnv: { REDIS_URL: r.url }, appRedis: r.url, info: () => infoOf([r.port]), stop: () => r.stop() }
}

/** Keys, used memory and CPU, summed over the data nodes on `ports`. */
async function infoOf(ports: number[]): Promise<RedisInfo> {
  let keys = 0
  let memoryMb = 0
  let cpu = 0
  for (const port of ports) {
    const c = new Redis(port, '127.0.0.1')
    keys += await c.dbsize()
    memoryMb += await redisUsedMemoryMb(c)
    cpu += await redisCpuMs(c)
    c.disconnect()
  }
  return { keys, used_memory_mb: round(memoryMb, 1), cpu_ms: cpu }
}

/** Resident set size of a process, in MB, from /proc (Linux). */
export function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN)
  return kb / 1024
}

/** User + system CPU time of a process so far, in ms, from /proc (Linux; USER_HZ = 100). */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10
}
