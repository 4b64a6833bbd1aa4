/**
 * The report of a run: medians and ranges over rounds, the targets, the printed table, and the same
 * data as JSON in bench/results/latest.json (its keys are what runs are compared by between commits).
 */
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { calibrate, type Meter, type Snapshot } from './meter.js'
import type { Samples } from './rounds.js'
import * as settings from './settings.js'
import { HOSTS, LOG_LEVEL, log, profileDir, resultsDir, runDir } from './settings.js'
import { fmt, round, summarize, type Summary } from './stats.js'

export interface Target { name: string; key: string; target: number; met: boolean | null }

export interface Results {
  readonly summaries: Record<string, Summary>
  /** The median of a metric over rounds (NaN when it was not measured). */
  readonly med: (key: string) => number
  readonly targets: readonly Target[]
  readonly table: readonly string[]
}

/** What the JSON records besides the results: the run's start, Redis at the end, the machine. */
export interface RunFacts {
  readonly startedAt: number
  readonly loadBefore: readonly number[]
  readonly calibrationBefore: number
  readonly atStart: Snapshot
  readonly redisInfo: { keys: number; usedMemoryMb: number }
}

/** The table's rows: label, metric key, unit after the median. */
const ROWS: readonly (readonly [string, string, string])[] = [
  ['Tessera hand-overs/s', 'handover_per_s', ''],
  ['oidc-provider + openid-client hand-overs/s', 'oidc_handover_per_s', ''],
  ['  ratio Tessera / OIDC (per round)', 'handover_ratio_vs_oidc', 'x'],
  ['  server + Redis CPU per hand-over, OIDC / Tessera', 'handover_cpu_ratio_vs_oidc', 'x'],
  ['Tessera server CPU ms / hand-over (IdP + app)', 'server_cpu_ms_per_handover', ''],
  ['    IdP', 'idp_cpu_ms_per_handover', ''],
  ['    app', 'app_cpu_ms_per_handover', ''],
  ['OIDC server CPU ms / hand-over (OP + RP)', 'oidc_server_cpu_ms_per_handover', ''],
  ['    OP', 'oidc_provider_cpu_ms_per_handover', ''],
  ['    RP', 'oidc_rp_cpu_ms_per_handover', ''],
  ['bare hand-over (floor, no checks) hand-overs/s', 'bare_handover_per_s', ''],
  ['bare hand-over server CPU ms / hand-over', 'bare_server_cpu_ms_per_handover', ''],
  ['    IdP', 'bare_idp_cpu_ms_per_handover', ''],
  ['    app', 'bare_app_cpu_ms_per_handover', ''],
  ['Redis CPU ms / hand-over: bare', 'bare_redis_cpu_ms_per_handover', ''],
  ['load driver CPU ms / hand-over: bare', 'bare_driver_cpu_ms_per_handover', ''],
  ['  ratio Tessera / bare server CPU (per round)', 'server_cpu_ratio_tessera_vs_bare', 'x'],
  ['  ratio Tessera / bare hand-overs/s', 'handover_ratio_vs_bare', 'x'],
  ['  server + Redis CPU per hand-over, bare / Tessera', 'handover_cpu_ratio_vs_bare', 'x'],
  ['Redis CPU ms / hand-over: Tessera', 'redis_cpu_ms_per_handover', ''],
  ['Redis CPU ms / hand-over: OIDC', 'oidc_redis_cpu_ms_per_handover', ''],
  ['load driver CPU ms / hand-over: Tessera', 'driver_cpu_ms_per_handover', ''],
  ['load driver CPU ms / hand-over: OIDC', 'oidc_driver_cpu_ms_per_handover', ''],
  ['Tessera hand-over latency p50 ms', 'handover_p50_ms', ''],
  ['  p99 ms', 'handover_p99_ms', ''],
  ['OIDC hand-over latency p50 ms', 'oidc_handover_p50_ms', ''],
  ['  p99 ms', 'oidc_handover_p99_ms', ''],
  ['Tessera page views/s', 'pageview_per_s', ''],
  ['@fastify/session page views/s (rolling: false)', 'fastify_session_pageview_per_s', ''],
  ['@fastify/session page views/s (default, rolling)', 'fastify_session_default_pageview_per_s', ''],
  ['Fastify hello-world req/s', 'hello_world_per_s', ''],
  ['  ratio Tessera / @fastify/session rolling:false', 'pageview_ratio_vs_fastify_session', 'x'],
  ['  ratio Tessera / @fastify/session default', 'pageview_ratio_vs_fastify_session_default', 'x'],
  ['  Tessera page views / hello-world', 'pageview_fraction_of_hello_world', ''],
  ['  server + Redis CPU per page view, @fastify/session / Tessera', 'pageview_cpu_ratio_vs_fastify_session', 'x'],
  ['bare page (one cookie, one GET) page views/s', 'bare_pageview_per_s', ''],
  ['  ratio Tessera / bare page', 'pageview_ratio_vs_bare', 'x'],
  ['  server + Redis CPU per page view, bare / Tessera', 'pageview_cpu_ratio_vs_bare', 'x'],
  ['  the bare page / @fastify/session rolling:false (the ceiling)', 'bare_pageview_ratio_vs_fastify_session', 'x'],
  ['  server + Redis CPU per page view, @fastify/session / bare page', 'bare_pageview_cpu_ratio_vs_fastify_session', 'x'],
  ['server CPU us / page view: Tessera', 'pageview_server_cpu_us', ''],
  ['server CPU us / page view: @fastify/session', 'fastify_session_server_cpu_us', ''],
  ['server CPU us / page view: @fastify/session default', 'fastify_session_default_server_cpu_us', ''],
  ['server CPU us / request: hello-world', 'hello_world_server_cpu_us', ''],
  ['server CPU us / page view: bare page', 'bare_pageview_server_cpu_us', ''],
  ['Redis CPU us / page view: Tessera', 'pageview_redis_cpu_us', ''],
  ['Redis CPU us / page view: @fastify/session', 'fastify_session_redis_cpu_us', ''],
  ['Redis CPU us / page view: bare page', 'bare_pageview_redis_cpu_us', ''],
  ['forward-auth page views/s (nginx -> gate -> plain app)', 'forward_auth_pageview_per_s', ''],
  ['  ratio forward-auth / Tessera plugin page view', 'forward_auth_pageview_ratio_vs_plugin', 'x'],
  ['  gate CPU us / page view', 'forward_auth_gate_cpu_us', ''],
  ['  Redis CPU us / page view', 'forward_auth_redis_cpu_us', ''],
  ['  gate + Redis CPU per page view, forward-auth / plugin', 'forward_auth_cpu_ratio_vs_plugin', 'x'],
  ['  p99 ms', 'forward_auth_pageview_p99_ms', ''],
  ['forward-auth floor page views/s (nginx -> bare gate: cookie, GET -> plain app)', 'forward_auth_floor_pageview_per_s', ''],
  ['  ratio forward-auth / floor', 'forward_auth_ratio_vs_floor', 'x'],
  ['  gate + Redis CPU per page view, floor / forward-auth', 'forward_auth_cpu_ratio_vs_floor', 'x'],
  ['  bare gate CPU us / page view', 'forward_auth_floor_gate_cpu_us', ''],
  ['  Redis CPU us / page view (floor)', 'forward_auth_floor_redis_cpu_us', ''],
  ['TOTP sign-in steps/s (POST /login/second-factor, valid code)', 'totp_per_s', ''],
  ['TOTP step floor (GETDEL + validate + Lua step-accept) steps/s', 'totp_floor_per_s', ''],
  ['  ratio Tessera / floor steps/s', 'totp_ratio_vs_floor', 'x'],
  ['  server + Redis CPU per step, floor / Tessera', 'totp_cpu_ratio_vs_floor', 'x'],
  ['  IdP CPU us / step', 'totp_idp_cpu_us', ''],
  ['  floor CPU us / step', 'totp_floor_cpu_us', ''],
  ['  Redis CPU us / step: Tessera', 'totp_redis_cpu_us', ''],
  ['  Redis CPU us / step: floor', 'totp_floor_redis_cpu_us', ''],
  ['  p99 ms', 'totp_p99_ms', ''],
  ['sign-ins per core-second through the form (argon2id, shipped costs)', 'signins_per_core_s', ''],
  ['raw @node-rs/argon2 verifies per core-second', 'argon2_verifies_per_core_s', ''],
  ['  ratio sign-ins / argon2 verifies (per core)', 'signin_ratio_vs_argon2', 'x'],
  ['hand-over p99 ms, alone', 'handover_p99_ms_idle', ''],
  ['hand-over p99 ms while 50 sign-ins queue at the IdP', 'handover_p99_ms_under_50_signins', ''],
  ['token mint + open /s (one process)', 'mint_open_per_s', ''],
  ['jose compact JWE (dir, A256GCM) encrypt + decrypt /s', 'jose_jwe_mint_open_per_s', ''],
  ['bare node:crypto AES-256-GCM seal + open /s (floor)', 'raw_gcm_seal_open_per_s', ''],
  ['  ratio Tessera / jose JWE', 'mint_open_ratio_vs_jose', 'x'],
  ['  Tessera / bare GCM', 'mint_open_fraction_of_raw_gcm', ''],
  ['IdP RSS MB after hand-overs', 'idp_rss_mb', ''],
  ['  of which V8 heap (reserved)', 'idp_heap_total_mb', ''],
  ['  of which mapped from files (node binary, libraries)', 'idp_rss_file_mb', ''],
  ['bare hand-over IdP RSS MB after hand-overs (Fastify + ioredis, the floor)', 'bare_idp_rss_mb', ''],
  ['app RSS MB after hand-overs', 'app_rss_mb', ''],
  ['OIDC provider RSS MB after hand-overs', 'oidc_provider_rss_mb', ''],
  ['OIDC RP RSS MB after hand-overs', 'oidc_rp_rss_mb', ''],
]

export function results(samples: Samples): Results {
  const summaries = Object.fromEntries(Object.entries(samples.samples).map(([k, v]) => [k, summarize(v)])) as Record<string, Summary>
  const med = (k: string): number => summaries[k]?.median ?? NaN
  const target = (name: string, key: string, goal: number, ok: (v: number) => boolean): Target =>
    ({ name, key, target: goal, met: Number.isFinite(med(key)) ? ok(med(key)) : null })
  const targets = [
    target('hand-over >= 0.85x the bare hand-over floor', 'handover_ratio_vs_bare', 0.85, (v) => v >= 0.85),
    target('page view >= 0.8x a bare one-round-trip page', 'pageview_ratio_vs_bare', 0.8, (v) => v >= 0.8),
    target('hand-over >= 5x OIDC', 'handover_ratio_vs_oidc', 5, (v) => v >= 5),
    target('hand-over server + Redis CPU >= 6x less than OIDC', 'handover_cpu_ratio_vs_oidc', 6, (v) => v >= 6),
    target('page view >= 1.5x @fastify/session (rolling: false)', 'pageview_ratio_vs_fastify_session', 1.5, (v) => v >= 1.5),
    target('sign-ins >= 0.8x raw argon2 verifies, per core', 'signin_ratio_vs_argon2', 0.8, (v) => v >= 0.8),
    target('hand-over p99 < 50 ms while 50 sign-ins queue', 'handover_p99_ms_under_50_signins', 50, (v) => v < 50),
    target('IdP RSS < 100 MB after the load', 'idp_rss_mb', 100, (v) => v < 100),
  ]
  return { summaries, med, targets, table: tableOf(summaries) }
}

function tableOf(summaries: Record<string, Summary>): string[] {
  const table: string[] = []
  const w = 52
  table.push(`${'metric'.padEnd(w)}${'median'.padStart(10)}   min - max`)
  table.push('-'.repeat(w + 32))
  for (const [label, key, unit] of ROWS) {
    const s = summaries[key]
    if (s === undefined) continue
    table.push(`${label.padEnd(w)}${(fmt(s.median) + unit).padStart(10)}   ${fmt(s.min)} - ${fmt(s.max)}`)
  }
  return table
}

/** The table, the targets, how busy the machine was, every error, the servers' log lines and profiles. */
export function printReport(r: Results, meter: Meter): void {
  const { med } = r
  log('')
  for (const line of r.table) log(line)
  log('')
  log('targets:')
  for (const t of r.targets) log(`  ${t.met === null ? 'n/a    ' : t.met ? 'MET    ' : 'MISSED '} ${t.name} (median ${fmt(med(t.key))})`)
  const foreign = summarize(meter.foreignCpuPct)
  if (Number.isFinite(foreign.median)) {
    log(`other processes on this machine used ${fmt(foreign.median)}% of its CPU during the timed windows (median; max ${fmt(foreign.max)}%)` +
      `${foreign.max > 10 ? ': the machine was shared, absolute numbers are lower than on a quiet one' : ''}`)
  }
  log(`errors: ${meter.errorsTotal === 0 ? 'none' : ''}`)
  for (const [system, e] of meter.errors) log(`  ${system}: ${e.count} (${e.samples.join(' | ')})`)
  printRunFiles()
}

/** How many lines each server logged (at LOG_LEVEL, a request that succeeds logs none), and the CPU profiles. */
function printRunFiles(): void {
  const logs = readdirSync(runDir).filter((f) => f.endsWith('.log')).map((f) => {
    const text = readFileSync(join(runDir, f), 'utf8')
    return { server: f.replace(/\.log$/, ''), lines: text === '' ? 0 : text.trimEnd().split('\n').length }
  })
  const noisy = logs.filter((l) => l.lines > 0)
  if (noisy.length > 0) log(`server log lines (level '${LOG_LEVEL}'): ${noisy.map((l) => `${l.server} ${l.lines}`).join(', ')} — see ${runDir}`)
  let profiles: string[] = []
  try { profiles = readdirSync(profileDir).filter((f) => statSync(join(profileDir, f)).isFile()).map((f) => join(profileDir, f)) } catch { /* none asked for */ }
  if (profiles.length > 0) log(`CPU profiles: ${profiles.join(', ')}`)
}

/** Writes bench/results/latest.json and says where. */
export function writeJson(r: Results, samples: Samples, meter: Meter, facts: RunFacts): void {
  const json = { ...headline(r.med), ...details(r, samples, meter, facts) }
  writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(json, null, 2)}\n`)
  log(`wrote ${join(resultsDir, 'latest.json')} (${json.wall_time_s} s)`)
}

/** The figures the targets and the README speak of, first in the file. */
function headline(med: (key: string) => number): Record<string, number> {
  const keys: [string, number][] = [
    ['handover_per_s', 0], ['oidc_handover_per_s', 0], ['handover_ratio_vs_oidc', 2],
    ['pageview_per_s', 0], ['fastify_session_pageview_per_s', 0], ['fastify_session_default_pageview_per_s', 0],
    ['pageview_ratio_vs_fastify_session', 2], ['hello_world_per_s', 0],
    ['mint_open_per_s', 0], ['jose_jwe_mint_open_per_s', 0], ['raw_gcm_seal_open_per_s', 0],
    ['idp_rss_mb', 1], ['idp_rss_file_mb', 1], ['bare_idp_rss_mb', 1], ['app_rss_mb', 1], ['server_cpu_ms_per_handover', 3], ['oidc_server_cpu_ms_per_handover', 3],
    ['bare_handover_per_s', 0], ['bare_server_cpu_ms_per_handover', 3], ['server_cpu_ratio_tessera_vs_bare', 2],
    ['handover_ratio_vs_bare', 2], ['handover_cpu_ratio_vs_bare', 2], ['handover_cpu_ratio_vs_oidc', 2],
    ['bare_pageview_per_s', 0], ['pageview_ratio_vs_bare', 2], ['pageview_cpu_ratio_vs_bare', 2], ['pageview_cpu_ratio_vs_fastify_session', 2],
    ['bare_pageview_ratio_vs_fastify_session', 2], ['bare_pageview_cpu_ratio_vs_fastify_session', 2],
    ['signins_per_core_s', 1], ['argon2_verifies_per_core_s', 1], ['signin_ratio_vs_argon2', 2],
    ['handover_p99_ms_idle', 1], ['handover_p99_ms_under_50_signins', 1],
    ['forward_auth_pageview_per_s', 0], ['forward_auth_pageview_ratio_vs_plugin', 2], ['forward_auth_gate_cpu_us', 0],
    ['forward_auth_floor_pageview_per_s', 0], ['forward_auth_ratio_vs_floor', 2], ['forward_auth_cpu_ratio_vs_floor', 2],
    ['totp_per_s', 0], ['totp_floor_per_s', 0], ['totp_ratio_vs_floor', 2], ['totp_cpu_ratio_vs_floor', 2],
  ]
  return Object.fromEntries(keys.map(([key, digits]) => [key, round(med(key), digits)]))
}

function details(r: Results, samples: Samples, meter: Meter, facts: RunFacts): Record<string, unknown> & { wall_time_s: number } {
  const foreign = summarize(meter.foreignCpuPct)
  return {
    valid: meter.errorsTotal === 0,
    errors: { total: meter.errorsTotal, by_system: Object.fromEntries(meter.errors) },
    targets: r.targets.map((t) => ({ ...t, value: round(r.med(t.key), 3) })),
    metrics: Object.fromEntries(Object.entries(r.summaries).map(([k, s]) => [k, {
      median: round(s.median), min: round(s.min), max: round(s.max), samples: s.samples.map((x) => round(x)),
    }])),
    rss_mb_at_start: Object.fromEntries([...facts.atStart.servers].map(([srv, st]) => [srv.name, round(st.rssMb, 1)])),
    redis_commands_per_handover_last_round: samples.redisCommands,
    redis_after_run: { keys: facts.redisInfo.keys, used_memory_mb: round(facts.redisInfo.usedMemoryMb, 1) },
    settings: {
      rounds: settings.ROUNDS, duration_s: settings.DURATION_S, warmup_s: settings.WARMUP_S, oidc_warmup_s: settings.OIDC_WARMUP_S, lead_in_s: settings.LEAD_IN_S,
      concurrency: settings.CONCURRENCY, quick: settings.QUICK, server_log_level: LOG_LEVEL, oidc_verify_id_token_signature: settings.VERIFY_SIGNATURE,
      tessera_redis_auto_pipelining: settings.AUTO_PIPELINING, hosts: HOSTS,
    },
    machine: {
      calibration_hmac_sha256_per_s: { before: round(facts.calibrationBefore, 0), after: round(calibrate(), 0) },
      foreign_cpu_pct_during_windows: { median: round(foreign.median, 1), max: round(foreign.max, 1) },
      load_average_before: facts.loadBefore.map((x) => round(x, 2)), load_average_after: loadavg().map((x) => round(x, 2)),
      cpus: cpus().length, cpu_model: cpus()[0]?.model ?? 'unknown', memory_gb: round(totalmem() / 2 ** 30, 1), node: process.version, platform: process.platform,
    },
    table: r.table,
    generated_at: new Date().toISOString(),
    wall_time_s: round((performance.now() - facts.startedAt) / 1000, 1),
  }
}
