/**
 * The bench's settings, from the environment (see bench/README.md), and where it runs: the loopback
 * address of every server, the results folder and this run's temporary folder.
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const env = process.env
export const QUICK = env.BENCH_QUICK === '1'
const num = (name: string, fallback: number): number => {
  const v = env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: expected a positive number, got "${v}"`)
  return n
}
export const ROUNDS = Math.round(num('ROUNDS', 3))
export const DURATION_S = num('DURATION', QUICK ? 1 : 5)
export const WARMUP_S = num('WARMUP', QUICK ? 1 : 5)
export const OIDC_WARMUP_S = num('OIDC_WARMUP', QUICK ? 2 : 10)
export const CONCURRENCY = Math.round(num('CONCURRENCY', 10))
/**
 * Unmeasured seconds right before each measured hand-over window, on the same system: every window
 * of every system starts from the same warm state, never after idling while the others ran.
 */
export const LEAD_IN_S = QUICK ? 0.3 : 2
/** The same before each 1-second page-view slice. */
export const PAGEVIEW_LEAD_IN_S = QUICK ? 0.2 : 0.5
export const MINT_OPEN_S = Math.min(DURATION_S, 2)
export const LOG_LEVEL = env.BENCH_LOG_LEVEL ?? 'warn'
export const PROFILE = new Set((env.BENCH_PROFILE ?? '').split(',').map((s) => s.trim()).filter((s) => s !== ''))
export const VERIFY_SIGNATURE = env.BENCH_OIDC_VERIFY_SIGNATURE === '1'
export const AUTO_PIPELINING = env.BENCH_REDIS_AUTOPIPELINING === '1'
export const ONLY = new Set((env.BENCH_ONLY ?? 'handover,oidc,bare,pageview,mint,signin,totp').split(',').map((s) => s.trim()))

export const HOSTS = {
  idp: '127.0.0.1', app: '127.0.0.2', op: '127.0.0.3', rp: '127.0.0.4',
  fastifySession: '127.0.0.5', fastifySessionDefault: '127.0.0.6', hello: '127.0.0.7',
  bareIdp: '127.0.0.8', bareApp: '127.0.0.9', signin: '127.0.0.10',
  forwardAuth: '127.0.0.11', gate: '127.0.0.12', remoteUserPage: '127.0.0.13', totpFloor: '127.0.0.14',
  forwardAuthFloor: '127.0.0.15', bareGate: '127.0.0.16',
} as const

/** The servers' scripts, in dist/bench/servers/. */
export const serversDir = new URL('../servers/', import.meta.url)
export const resultsDir = fileURLToPath(new URL('../../../bench/results/', import.meta.url)) // dist/bench/lib/ -> bench/results/
export const runDir = join(tmpdir(), `tessera-bench-${new Date().toISOString().replace(/[:.]/g, '-')}`)
export const profileDir = join(runDir, 'profiles')

export const log = (line: string): void => { process.stdout.write(`${line}\n`) }
