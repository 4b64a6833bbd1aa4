/**
 * One measurement of one system: hand-overs by the virtual users (every one checked, every failure
 * counted, in the warm-up too) or page views by autocannon, with the CPU each server, Redis and the
 * driver spent in the timed window.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import type { HandoverSystem } from './handovers.js'
import { cpuOf, type Meter, type Snapshot } from './meter.js'
import type { ServerProcess } from './proc.js'
import { CONCURRENCY, DURATION_S, LEAD_IN_S, PAGEVIEW_LEAD_IN_S } from './settings.js'
import { percentile, round } from './stats.js'

export interface HandoverResult {
  perSec: number
  completed: number
  errors: number
  serverCpuMsPerHandover: number
  perServerCpuMs: number[]
  redisCpuMsPerHandover: number
  /** The load driver's own CPU (this process), for context: it shares the machine's cores. */
  driverCpuMsPerHandover: number
  /** CPU the bench's other servers (not under test, idle) used in the timed window, as a share of one core. */
  idleServersCpuPct: number
  /** Redis commands per hand-over, by name (info commands excluded). */
  redisCommandsPerHandover: Record<string, number>
  p50Ms: number
  p99Ms: number
  rssMb: number[]
  heapTotalMb: number[]
  rssFileMb: number[]
}

/** Every virtual user of `sys` loops over hand-overs for `seconds`; with `measure`, after a lead-in, timed. */
export async function runHandovers(sys: HandoverSystem, meter: Meter, seconds: number, measure: boolean): Promise<HandoverResult | undefined> {
  let stop = false
  let counting = false
  let completed = 0
  let errors = 0
  const latencies: number[] = []
  const workers = sys.browsers.map(async (b) => {
    while (!stop) {
      const t = performance.now()
      try {
        await sys.handover(b)
        if (counting) { completed++; latencies.push(performance.now() - t) }
      } catch (err) {
        errors++ // every error counts, in the warm-up too; none is retried or skipped
        meter.recordError(sys.name, err)
      }
    }
  })
  const finish = async (): Promise<void> => { stop = true; await Promise.all(workers) }
  if (!measure) {
    await sleep(seconds * 1000)
    await finish()
    return undefined
  }
  await sleep(LEAD_IN_S * 1000)
  const commandsBefore = await meter.redis.commands()
  const before = await meter.snapshot()
  counting = true
  await sleep(seconds * 1000)
  counting = false
  const after = await meter.snapshot()
  const commandsAfter = await meter.redis.commands()
  await finish()
  meter.recordForeign(before, after)
  const redisCommandsPerHandover = commandsPer(commandsBefore, commandsAfter, completed)
  return handoverResult(sys.servers, meter.servers, before, after, { completed, errors, latencies, redisCommandsPerHandover })
}

function handoverResult(servers: readonly ServerProcess[], all: readonly ServerProcess[], before: Snapshot, after: Snapshot,
  counts: { completed: number; errors: number; latencies: number[]; redisCommandsPerHandover: Record<string, number> }): HandoverResult {
  const { completed, errors, latencies, redisCommandsPerHandover } = counts
  const perServerCpuMs = servers.map((srv) => cpuOf(before, after, srv))
  const serverCpu = perServerCpuMs.reduce((x, y) => x + y, 0)
  latencies.sort((a, b) => a - b)
  return {
    perSec: completed / ((after.at - before.at) / 1000),
    completed,
    errors,
    serverCpuMsPerHandover: serverCpu / completed,
    perServerCpuMs,
    redisCpuMsPerHandover: (after.redisMs - before.redisMs) / completed,
    driverCpuMsPerHandover: (after.driverMs - before.driverMs) / completed,
    idleServersCpuPct: (100 * all.filter((srv) => !servers.includes(srv)).reduce((sum, srv) => sum + cpuOf(before, after, srv), 0)) / (after.at - before.at),
    redisCommandsPerHandover,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    rssMb: servers.map((srv) => after.servers.get(srv)?.rssMb ?? NaN),
    heapTotalMb: servers.map((srv) => after.servers.get(srv)?.heapTotalMb ?? NaN),
    rssFileMb: servers.map((srv) => after.servers.get(srv)?.rssFileMb ?? NaN),
  }
}

/** Redis commands per hand-over, by name, between two INFO commandstats (INFO itself left out). */
function commandsPer(before: Record<string, number>, after: Record<string, number>, completed: number): Record<string, number> {
  return Object.fromEntries(Object.entries(after)
    .filter(([name]) => name !== 'info')
    .map(([name, n]) => [name, round((n - (before[name] ?? 0)) / completed, 2)] as const)
    .filter(([, n]) => n > 0))
}

export interface PageviewSystem {
  readonly name: string
  readonly url: string
  readonly server: ServerProcess
  readonly headers: Record<string, string>
  readonly expectBody: string
}

export interface PageviewResult { perSec: number; errors: number; serverCpuUsPerRequest: number; redisCpuUsPerRequest: number; p99Ms: number; ok: number; seconds: number; cpuMs: number; redisMs: number }

export async function runPageviews(sys: PageviewSystem, seconds: number, meter: Meter, measure: boolean): Promise<PageviewResult> {
  const before = measure ? await meter.snapshot() : undefined
  const result = await autocannon({
    url: sys.url, connections: CONCURRENCY, pipelining: 1, duration: seconds,
    headers: sys.headers, expectBody: sys.expectBody,
  })
  const after = measure ? await meter.snapshot() : undefined
  if (before !== undefined && after !== undefined) meter.recordForeign(before, after)
  const ok = result['2xx'] - result.mismatches
  const errors = result.non2xx + result.errors + result.timeouts + result.mismatches
  if (errors > 0) meter.recordError(sys.name, new Error(`${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts, ${result.mismatches} wrong bodies`))
  const cpuMs = before !== undefined && after !== undefined ? cpuOf(before, after, sys.server) : NaN
  const redisMs = before !== undefined && after !== undefined ? after.redisMs - before.redisMs : NaN
  return {
    perSec: ok / result.duration, errors, serverCpuUsPerRequest: (cpuMs * 1000) / ok, redisCpuUsPerRequest: (redisMs * 1000) / ok,
    p99Ms: result.latency.p99, ok, seconds: result.duration, cpuMs, redisMs,
  }
}

export type PageviewRound = [PageviewResult, PageviewResult, PageviewResult, PageviewResult, PageviewResult, PageviewResult, PageviewResult]

/**
 * One round of page views: the systems take turns in 1-second slices (Tessera, @fastify/session
 * rolling: false, default, hello-world, the bare floor, forward-auth through nginx and its floor, and again) until each has had DURATION_S
 * seconds. On this shared 2-core machine the speed drifts by tens of percent within seconds; slices
 * put every system through the same drift, where one 5-second block each let a slow spell land on
 * one system only. Each slice is preceded by an unmeasured lead-in on the same system, so every
 * measured second starts from the same warm state (connections open, code hot), never after idling.
 */
export async function pageviewRound(systems: readonly PageviewSystem[], meter: Meter): Promise<PageviewRound> {
  const totals = systems.map(() => ({ ok: 0, seconds: 0, cpuMs: 0, redisMs: 0, errors: 0, p99Ms: 0 }))
  for (let slice = 0; slice < Math.max(1, Math.round(DURATION_S)); slice++) {
    for (const [i, p] of systems.entries()) {
      await runPageviews(p, PAGEVIEW_LEAD_IN_S, meter, false)
      const r = await runPageviews(p, 1, meter, true)
      const t = totals[i] as (typeof totals)[number]
      t.ok += r.ok; t.seconds += r.seconds; t.cpuMs += r.cpuMs; t.redisMs += r.redisMs; t.errors += r.errors; t.p99Ms = Math.max(t.p99Ms, r.p99Ms)
    }
  }
  return totals.map((t) => ({
    perSec: t.ok / t.seconds, errors: t.errors, serverCpuUsPerRequest: (t.cpuMs * 1000) / t.ok, redisCpuUsPerRequest: (t.redisMs * 1000) / t.ok,
    p99Ms: t.p99Ms, ok: t.ok, seconds: t.seconds, cpuMs: t.cpuMs, redisMs: t.redisMs,
  })) as PageviewRound
}
