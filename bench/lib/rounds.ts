/**
 * The warm-up and the rounds: every system, in turn, in every round, so drift (thermal, noisy
 * neighbours) hits both sides of each ratio alike. Each round adds one sample per metric; the
 * ratios are taken within the round.
 */
import type { HandoverSystem } from './handovers.js'
import { pageviewRound, runHandovers, runPageviews, type HandoverResult, type PageviewResult, type PageviewSystem } from './measure.js'
import type { Meter } from './meter.js'
import type { MintOpenRound } from './mint-open.js'
import { DURATION_S, MINT_OPEN_S, OIDC_WARMUP_S, ONLY, ROUNDS, WARMUP_S, log } from './settings.js'
import { fmt } from './stats.js'
import { measureSignin } from './signin.js'
import type { TotpBench } from './totp.js'
import type { Servers } from './servers.js'
import type { Agent } from 'undici'

export interface Systems {
  readonly tessera: HandoverSystem
  readonly oidc: HandoverSystem
  readonly bare: HandoverSystem
  /** Tessera, @fastify/session rolling: false, @fastify/session default, hello-world, the bare page floor, in that order. */
  readonly pageviews: readonly PageviewSystem[]
  readonly mintOpen: (seconds: number) => Promise<MintOpenRound>
}

export interface Samples {
  /** Every metric's samples, one a round, by JSON key. */
  readonly samples: Record<string, number[]>
  /** Redis commands per hand-over by name, as in the last round. */
  readonly redisCommands: Record<string, Record<string, number>>
}

type Add = (key: string, v: number) => void

/** Warm-up: every system, several seconds, before any measurement. */
export async function warmUp(s: Systems, meter: Meter): Promise<void> {
  log(`warm-up: Tessera hand-over ${WARMUP_S} s, OIDC hand-over ${OIDC_WARMUP_S} s, page views ${WARMUP_S} s each`)
  if (ONLY.has('handover')) await runHandovers(s.tessera, meter, WARMUP_S, false)
  if (ONLY.has('oidc')) await runHandovers(s.oidc, meter, OIDC_WARMUP_S, false)
  if (ONLY.has('bare')) await runHandovers(s.bare, meter, WARMUP_S, false)
  if (ONLY.has('pageview')) for (const p of s.pageviews) await runPageviews(p, WARMUP_S, meter, false)
  if (ONLY.has('mint')) await s.mintOpen(Math.min(WARMUP_S, 1))
}

/**
 * The TOTP sign-in step beside its floor: one warm-up batch each, then ROUNDS rounds (each system
 * right after its own lead-in batch); ratios taken within the round.
 */
export async function totpSamples(totp: TotpBench, out: Samples): Promise<void> {
  const add: Add = (key, v) => { (out.samples[key] ??= []).push(v) }
  await totp.warm()
  for (let round = 1; round <= ROUNDS; round++) {
    const { tessera: t, floor: f } = await totp.round(round)
    const figures = {
      totp_per_s: t.perSec, totp_idp_cpu_us: t.serverCpuUs, totp_redis_cpu_us: t.redisCpuUs, totp_p99_ms: t.p99Ms,
      totp_floor_per_s: f.perSec, totp_floor_cpu_us: f.serverCpuUs, totp_floor_redis_cpu_us: f.redisCpuUs,
      totp_ratio_vs_floor: t.perSec / f.perSec,
      totp_cpu_ratio_vs_floor: (f.serverCpuUs + f.redisCpuUs) / (t.serverCpuUs + t.redisCpuUs),
    }
    for (const [key, v] of Object.entries(figures)) add(key, v)
    log(`totp round ${round}/${ROUNDS}: Tessera ${fmt(t.perSec)} steps/s (${fmt(t.serverCpuUs)} us IdP CPU), floor ${fmt(f.perSec)}/s (${fmt(f.serverCpuUs)} us)`)
  }
}

/** Sign-in capacity and hand-over latency under sign-ins, once after the rounds (argon2 fills the cores). */
export async function signinSamples(s: Systems, servers: Servers, agent: Agent, meter: Meter, out: Samples): Promise<void> {
  if (!ONLY.has('signin')) return
  const r = await measureSignin(servers.idp, s.tessera, servers.capacityPhc, agent, meter, DURATION_S)
  const add: Add = (key, v) => { (out.samples[key] ??= []).push(v) }
  add('idp_cpu_ms_per_signin', r.idpCpuMsPerSignin)
  add('argon2_cpu_ms_per_verify', r.argon2CpuMsPerVerify)
  add('signins_per_core_s', r.signinsPerCoreS)
  add('argon2_verifies_per_core_s', r.argon2PerCoreS)
  add('signin_ratio_vs_argon2', r.signinsPerCoreS / r.argon2PerCoreS)
  add('handover_p99_ms_idle', r.handoverP99MsIdle)
  add('handover_p99_ms_under_50_signins', r.handoverP99MsUnderSignins)
  add('signin_p50_ms_under_load', r.signinP50MsUnderLoad)
  log(`sign-in: ${fmt(r.signinsPerCoreS)}/s per core through the form, argon2 alone ${fmt(r.argon2PerCoreS)}/s per core; ` +
    `hand-over p99 ${fmt(r.handoverP99MsIdle)} ms alone, ${fmt(r.handoverP99MsUnderSignins)} ms while 50 sign-ins queue`)
}

export async function measureRounds(s: Systems, meter: Meter): Promise<Samples> {
  const out: Samples = { samples: {}, redisCommands: {} }
  const add: Add = (key, v) => { (out.samples[key] ??= []).push(v) }
  for (let round = 1; round <= ROUNDS; round++) {
    const line = await handoverRound(s, meter, add, out.redisCommands, round)
    if (ONLY.has('pageview')) line.push(await pageviewSamples(s, meter, add))
    if (ONLY.has('mint')) line.push(await mintOpenSamples(s, add))
    log(`round ${round}/${ROUNDS}: ${line.join('; ')}`)
  }
  return out
}

/**
 * One round of the three hand-overs (those BENCH_ONLY names), each right after its own lead-in; the
 * order turns with the round, so no system always runs first (or right after the costliest one).
 * Returns the round's line for the log.
 */
async function handoverRound(s: Systems, meter: Meter, add: Add, redisCommands: Samples['redisCommands'], round: number): Promise<string[]> {
  const line: string[] = []
  const said = (name: string, r: HandoverResult): void => { line.push(`${name} ${fmt(r.perSec)} hand-overs/s (${fmt(r.serverCpuMsPerHandover)} ms CPU; idle servers ${fmt(r.idleServersCpuPct)}% of a core)`) }
  const plan = [['handover', s.tessera], ['oidc', s.oidc], ['bare', s.bare]] as const
  const got = new Map<string, HandoverResult>()
  for (let i = 0; i < plan.length; i++) {
    const [name, sys] = plan[(i + round) % plan.length] as (typeof plan)[number]
    const r = ONLY.has(name) ? await runHandovers(sys, meter, DURATION_S, true) : undefined
    if (r !== undefined) got.set(name, r)
  }
  const t = got.get('handover')
  const o = got.get('oidc')
  const f = got.get('bare')
  if (t !== undefined) {
    recordHandover(add, '', ['idp', 'app'], t)
    add('idp_heap_total_mb', t.heapTotalMb[0] as number)
    add('idp_rss_file_mb', t.rssFileMb[0] as number)
    redisCommands.tessera = t.redisCommandsPerHandover
    said('Tessera', t)
  }
  if (o !== undefined) {
    recordHandover(add, 'oidc_', ['provider', 'rp'], o)
    redisCommands.oidc = o.redisCommandsPerHandover
    said('OIDC', o)
  }
  if (f !== undefined) {
    add('bare_handover_per_s', f.perSec)
    add('bare_server_cpu_ms_per_handover', f.serverCpuMsPerHandover)
    add('bare_redis_cpu_ms_per_handover', f.redisCpuMsPerHandover)
    // Each side beside Tessera's IdP and app, so a gap can be placed on one side.
    add('bare_idp_cpu_ms_per_handover', (f.perServerCpuMs[0] as number) / f.completed)
    add('bare_app_cpu_ms_per_handover', (f.perServerCpuMs[1] as number) / f.completed)
    add('bare_driver_cpu_ms_per_handover', f.driverCpuMsPerHandover)
    // The floor's IdP (Fastify, ioredis and node:crypto, nothing else) after the same load: what a
    // Node process of this kind holds before any of Tessera's own code.
    add('bare_idp_rss_mb', f.rssMb[0] as number)
    said('bare', f)
  }
  // Throughput ratios, each beside the ratio of server + Redis CPU per hand-over (higher: Tessera
  // spends less). On 2 cores the throughput ratio also moves with the load driver's own CPU; the CPU
  // ratio does not (bench/README.md: which figure to quote).
  const cpu = (r: HandoverResult): number => r.serverCpuMsPerHandover + r.redisCpuMsPerHandover
  if (t !== undefined && f !== undefined) {
    add('server_cpu_ratio_tessera_vs_bare', t.serverCpuMsPerHandover / f.serverCpuMsPerHandover)
    add('handover_ratio_vs_bare', t.perSec / f.perSec)
    add('handover_cpu_ratio_vs_bare', cpu(f) / cpu(t))
  }
  if (t !== undefined && o !== undefined) {
    add('handover_ratio_vs_oidc', t.perSec / o.perSec)
    add('server_cpu_ratio_oidc_vs_tessera', o.serverCpuMsPerHandover / t.serverCpuMsPerHandover)
    add('handover_cpu_ratio_vs_oidc', cpu(o) / cpu(t))
  }
  return line
}

/**
 * One hand-over measurement's samples, under `prefix` (`''` for Tessera, `oidc_`): rate, CPU (all
 * servers, each server, Redis, driver), latency, RSS and Redis commands. `servers` names the
 * provider side and the app side, in the order of the system's servers.
 */
function recordHandover(add: Add, prefix: string, servers: readonly [string, string], r: HandoverResult): void {
  add(`${prefix}handover_per_s`, r.perSec)
  add(`${prefix}server_cpu_ms_per_handover`, r.serverCpuMsPerHandover)
  servers.forEach((name, i) => {
    add(`${prefix}${name}_cpu_ms_per_handover`, (r.perServerCpuMs[i] as number) / r.completed)
    add(`${prefix}${name}_rss_mb`, r.rssMb[i] as number)
  })
  add(`${prefix}redis_cpu_ms_per_handover`, r.redisCpuMsPerHandover)
  add(`${prefix}driver_cpu_ms_per_handover`, r.driverCpuMsPerHandover)
  add(`${prefix}handover_p50_ms`, r.p50Ms)
  add(`${prefix}handover_p99_ms`, r.p99Ms)
  add(`${prefix}redis_commands_per_handover`, Object.values(r.redisCommandsPerHandover).reduce((a, b) => a + b, 0))
}

async function pageviewSamples(s: Systems, meter: Meter, add: Add): Promise<string> {
  const [pv, fs, fsd, hw, bare, fa, faFloor] = await pageviewRound(s.pageviews, meter)
  const cpu = (r: PageviewResult): number => r.serverCpuUsPerRequest + r.redisCpuUsPerRequest
  add('pageview_per_s', pv.perSec)
  add('pageview_server_cpu_us', pv.serverCpuUsPerRequest)
  add('pageview_p99_ms', pv.p99Ms)
  add('fastify_session_pageview_per_s', fs.perSec)
  add('fastify_session_server_cpu_us', fs.serverCpuUsPerRequest)
  add('fastify_session_default_pageview_per_s', fsd.perSec)
  add('fastify_session_default_server_cpu_us', fsd.serverCpuUsPerRequest)
  add('hello_world_per_s', hw.perSec)
  add('hello_world_server_cpu_us', hw.serverCpuUsPerRequest)
  add('pageview_ratio_vs_fastify_session', pv.perSec / fs.perSec)
  add('pageview_ratio_vs_fastify_session_default', pv.perSec / fsd.perSec)
  add('pageview_fraction_of_hello_world', pv.perSec / hw.perSec)
  add('pageview_redis_cpu_us', pv.redisCpuUsPerRequest)
  add('fastify_session_redis_cpu_us', fs.redisCpuUsPerRequest)
  add('bare_pageview_per_s', bare.perSec)
  add('bare_pageview_server_cpu_us', bare.serverCpuUsPerRequest)
  add('bare_pageview_redis_cpu_us', bare.redisCpuUsPerRequest)
  add('pageview_ratio_vs_bare', pv.perSec / bare.perSec)
  add('pageview_cpu_ratio_vs_bare', cpu(bare) / cpu(pv))
  add('pageview_cpu_ratio_vs_fastify_session', cpu(fs) / cpu(pv))
  // The floor against the same peer: what the page-view target against @fastify/session asks of
  // Tessera is this ratio's share (the kernel's and Redis's work per request is everyone's).
  add('bare_pageview_ratio_vs_fastify_session', bare.perSec / fs.perSec)
  add('bare_pageview_cpu_ratio_vs_fastify_session', cpu(fs) / cpu(bare))
  // Forward-auth: the gate's CPU and Redis's, not nginx's nor the app's behind it (any auth would add those).
  add('forward_auth_pageview_per_s', fa.perSec)
  add('forward_auth_gate_cpu_us', fa.serverCpuUsPerRequest)
  add('forward_auth_redis_cpu_us', fa.redisCpuUsPerRequest)
  add('forward_auth_pageview_p99_ms', fa.p99Ms)
  add('forward_auth_pageview_ratio_vs_plugin', fa.perSec / pv.perSec)
  add('forward_auth_cpu_ratio_vs_plugin', cpu(fa) / cpu(pv))
  // Beside its floor: the same nginx snippets and plain app, a bare gate (one cookie, one GET).
  add('forward_auth_floor_pageview_per_s', faFloor.perSec)
  add('forward_auth_floor_gate_cpu_us', faFloor.serverCpuUsPerRequest)
  add('forward_auth_floor_redis_cpu_us', faFloor.redisCpuUsPerRequest)
  add('forward_auth_ratio_vs_floor', fa.perSec / faFloor.perSec)
  add('forward_auth_cpu_ratio_vs_floor', cpu(faFloor) / cpu(fa))
  return `page views/s Tessera ${fmt(pv.perSec)}, @fastify/session ${fmt(fs.perSec)} (default ${fmt(fsd.perSec)}), hello ${fmt(hw.perSec)}, bare ${fmt(bare.perSec)}, forward-auth via nginx ${fmt(fa.perSec)} (floor ${fmt(faFloor.perSec)})`
}

async function mintOpenSamples(s: Systems, add: Add): Promise<string> {
  const m = await s.mintOpen(MINT_OPEN_S)
  add('mint_open_per_s', m.tessera)
  add('jose_jwe_mint_open_per_s', m.jose)
  add('raw_gcm_seal_open_per_s', m.rawGcm)
  add('mint_open_ratio_vs_jose', m.tessera / m.jose)
  add('mint_open_fraction_of_raw_gcm', m.tessera / m.rawGcm)
  return `mint+open ${fmt(m.tessera)}/s (jose JWE ${fmt(m.jose)}, bare GCM ${fmt(m.rawGcm)})`
}
