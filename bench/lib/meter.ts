/**
 * The driver's account of CPU and errors: snapshots of every server's, Redis's, the driver's and the
 * whole machine's CPU at the edges of each timed window, the share other processes took, every
 * failed hand-over or page view, and a fixed yardstick of the machine's speed.
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { createHmac, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { ChildStats, ServerProcess } from './proc.js'
import type { BenchRedis } from './redis.js'

export interface Snapshot {
  readonly at: number
  readonly machineMs: number | undefined
  readonly servers: Map<ServerProcess, ChildStats>
  readonly redisMs: number
  readonly driverMs: number
}

export interface ErrorEntry { count: number; samples: string[] }

export class Meter {
  /** Every bench server, for the machine-wide CPU account. */
  readonly servers: ServerProcess[] = []
  /** Per timed window: the share of the machine's CPU used by processes other than ours (other users' jobs). */
  readonly foreignCpuPct: number[] = []
  /** Failures by system: how many, and the first few messages. */
  readonly errors = new Map<string, ErrorEntry>()

  constructor(readonly redis: BenchRedis) {}

  async snapshot(): Promise<Snapshot> {
    const [stats, redisMs] = await Promise.all([Promise.all(this.servers.map((s) => s.stats())), this.redis.cpuMs()])
    const cpu = process.cpuUsage()
    return {
      at: performance.now(), machineMs: machineBusyMs(), redisMs, driverMs: (cpu.user + cpu.system) / 1000,
      servers: new Map(this.servers.map((s, i) => [s, stats[i] as ChildStats])),
    }
  }

  /** Records the share of the machine other processes used between two snapshots. */
  recordForeign(a: Snapshot, b: Snapshot): void {
    if (a.machineMs === undefined || b.machineMs === undefined) return
    let ours = (b.redisMs - a.redisMs) + (b.driverMs - a.driverMs)
    for (const s of this.servers) ours += cpuOf(a, b, s)
    const capacity = (b.at - a.at) * cpus().length
    this.foreignCpuPct.push(Math.max(0, (100 * (b.machineMs - a.machineMs - ours)) / capacity))
  }

  recordError(system: string, err: unknown): void {
    let entry = this.errors.get(system)
    if (entry === undefined) { entry = { count: 0, samples: [] }; this.errors.set(system, entry) }
    entry.count++
    if (entry.samples.length < 5) entry.samples.push(err instanceof Error ? err.message : String(err))
  }

  get errorsTotal(): number {
    return [...this.errors.values()].reduce((n, e) => n + e.count, 0)
  }
}

/** CPU ms of `server` between two snapshots. */
export const cpuOf = (a: Snapshot, b: Snapshot, server: ServerProcess): number => (b.servers.get(server)?.cpuMs ?? NaN) - (a.servers.get(server)?.cpuMs ?? NaN)

/** Busy CPU time of the whole machine so far, in ms (Linux /proc/stat; undefined elsewhere). */
function machineBusyMs(): number | undefined {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] as string).trim().split(/\s+/).slice(1).map(Number)
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f
    return (user + nice + system + irq + softirq + steal) * 10 // USER_HZ = 100
  } catch {
    return undefined
  }
}

/**
 * A fixed CPU-bound yardstick (HMAC-SHA256 of 64 bytes, one core), so runs on a quiet and on a busy
 * or slower machine can be told apart.
 */
export function calibrate(): number {
  const key = randomBytes(32)
  const msg = randomBytes(64)
  let best = 0
  for (let r = 0; r < 3; r++) {
    let n = 0
    const t0 = performance.now()
    while (performance.now() - t0 < 100) { for (let i = 0; i < 200; i++) createHmac('sha256', key).update(msg).digest(); n += 200 }
    best = Math.max(best, n / ((performance.now() - t0) / 1000))
  }
  return best
}
