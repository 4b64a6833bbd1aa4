/**
 * The TOTP sign-in step (measurement 5): POST /login/second-factor with a valid code for a pending
 * sign-in, at the real IdP, beside a floor (servers/totp-floor.ts) that does only the essential work
 * (GETDEL of the pending state, otpauth's validate, the Lua step-accept).
 *
 * Each TOTP step is accepted once per user (RFC 6238 5.2), and a pending sign-in is used once, so
 * every timed step needs its own user and its own pending sign-in, made before the window:
 * - Tessera: users `totp<i>` in the IdP's users file (the tests' cheap argon2 hash: the password step
 *   is not what is measured), each enrolled once by the driver through the product's own factor store
 *   (the secret sealed under the IdP's FACTOR_KEYS, as enrolment stores it); per step, a browser goes
 *   app -> IdP /login form -> password -> the second-factor form (its CSRF token), untimed.
 * - Floor: the driver writes each pending state straight into Redis.
 * Then CONCURRENCY workers post the prepared steps, a lead-in batch unmeasured, then the timed batch.
 */
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import type { Agent } from 'undici'
import type { Browser } from '../../test/helpers/browser.js'
import { codeAt } from '../../test/helpers/factors.js'
import { formFields } from '../../test/helpers/forms.js'
import { PASSWORD, PASSWORD_HASH } from '../../test/helpers/users.js'
import { FactorStore } from '../../src/idp/factors/factor-store.js'
import { newTotpSecret, sealTotpSecret } from '../../src/idp/factors/totp.js'
import { parseSyncKeys, type Keyring } from '../../src/shared/keyring.js'
import { benchBrowser, expect } from './handovers.js'
import { cpuOf, type Meter } from './meter.js'
import type { ServerProcess } from './proc.js'
import { CONCURRENCY, DURATION_S, HOSTS, ONLY, ROUNDS } from './settings.js'
import { percentile } from './stats.js'

/** Timed Tessera steps per round; the floor gets FLOOR_TIMES as many (its setup costs nothing). */
export const TOTP_BATCH = Math.max(20, Math.round(100 * DURATION_S))
const LEAD_IN = Math.max(10, Math.round(TOTP_BATCH / 5))
const WARM = TOTP_BATCH
const FLOOR_TIMES = 4
/** Every Tessera step needs its own user: the warm-up's, then each round's lead-in and batch. */
const TOTP_USERS = ONLY.has('totp') ? WARM + ROUNDS * (LEAD_IN + TOTP_BATCH) : 0
const totpUser = (i: number): string => `totp${i}`

/** The users-file entries of the TOTP users (none unless BENCH_ONLY has totp). */
export function totpUsersYaml(): string {
  return Array.from({ length: TOTP_USERS }, (_, i) => `  ${totpUser(i)}:\n    displayname: TOTP ${i}\n    password: "${PASSWORD_HASH}"\n`).join('')
}

interface Step { readonly b: Browser; readonly form: Record<string, string> }

export interface TotpResult {
  readonly perSec: number
  readonly serverCpuUs: number
  readonly redisCpuUs: number
  readonly p99Ms: number
}

export interface TotpBench {
  /** One round: both systems prepared, then each runs a lead-in and its timed batch (order turns with `round`). */
  round(round: number): Promise<{ tessera: TotpResult; floor: TotpResult }>
  /** Unmeasured batches of both, before round 1. */
  warm(): Promise<void>
  close(): void
}

export async function setUpTotp(o: {
  idp: ServerProcess; app: ServerProcess; floor: ServerProcess; factorKeys: string; meter: Meter; agent: Agent
}): Promise<TotpBench> {
  const { idp, app, floor, meter, agent } = o
  const redis = new Redis(meter.redis.url)
  // Enrolment as the product stores it (totp-enrolment.ts): the sealed secret, its first step spent.
  const keyring = parseSyncKeys(o.factorKeys, 'FACTOR_KEYS', []) as Keyring
  const store = new FactorStore(redis)
  const secrets = Array.from({ length: TOTP_USERS }, () => newTotpSecret())
  for (let i = 0; i < TOTP_USERS; i += 200) {
    await Promise.all(secrets.slice(i, i + 200).map((secret, j) =>
      store.enrolTotp(totpUser(i + j), { sealed: sealTotpSecret(keyring, totpUser(i + j), secret), enrolledAt: Date.now() }, 0, [], { secret, ttlMs: 60_000 })))
  }
  let nextUser = 0
  let nextFloor = 0

  /** A browser at the second-factor form of a pending sign-in that came from the app. */
  const pendingAtIdp = async (): Promise<Step> => {
    const i = nextUser++
    expect(i < TOTP_USERS, 'out of TOTP users')
    const b = benchBrowser(agent)
    const start = await b.get(`${app.url}/private`)
    const login = start.location()
    expect(start.status === 302 && login?.startsWith(`${idp.url}/login?`) === true, `totp: app without session: ${start.status}`)
    const form = await b.get(login)
    expect(form.status === 200, `totp: login form: ${form.status}`)
    const pw = await b.post(`${idp.url}/login`, { ...formFields(form.body), username: totpUser(i), password: PASSWORD })
    expect(pw.status === 303 && pw.location()?.endsWith('/login/second-factor') === true, `totp: password: ${pw.status} ${pw.location() ?? ''}`)
    const factor = await b.get(`${idp.url}/login/second-factor`)
    const { csrf } = formFields(factor.body)
    expect(factor.status === 200 && csrf !== undefined, `totp: second-factor form: ${factor.status}`)
    return { b, form: { csrf, code: codeAt(secrets[i] as string) } }
  }
  const prepareTessera = async (n: number): Promise<Step[]> => {
    const out: Step[] = []
    let claimed = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => { while (claimed < n) { claimed++; out.push(await pendingAtIdp()) } }))
    return out
  }
  const prepareFloor = async (n: number): Promise<Step[]> => {
    const pipeline = redis.pipeline()
    const steps = Array.from({ length: n }, () => {
      const id = randomBytes(16).toString('base64url')
      const secret = newTotpSecret()
      pipeline.set(`totp-floor:p:${id}`, JSON.stringify({ u: `floor${nextFloor++}`, s: secret }), 'EX', 300)
      const b = benchBrowser(agent)
      b.cookies(HOSTS.totpFloor).set('p', id)
      return { b, form: { code: codeAt(secret) } }
    })
    await pipeline.exec()
    return steps
  }

  const tesseraStep = async (s: Step): Promise<void> => {
    const r = await s.b.post(`${idp.url}/login/second-factor`, s.form)
    expect(r.status === 303 && r.location()?.startsWith(`${app.url}/private?token=`) === true, `totp step: ${r.status} ${r.body.slice(0, 80)}`)
  }
  const floorStep = async (s: Step): Promise<void> => {
    const r = await s.b.post(`${floor.url}/second-factor`, s.form)
    expect(r.status === 303 && r.location()?.endsWith('/done') === true, `totp floor step: ${r.status} ${r.body.slice(0, 80)}`)
  }

  /** Posts every step, CONCURRENCY at a time; with `server`, the timed account of the batch. */
  const run = async (name: string, steps: readonly Step[], step: (s: Step) => Promise<void>, server?: ServerProcess): Promise<TotpResult | undefined> => {
    const before = server === undefined ? undefined : await meter.snapshot()
    const latencies: number[] = []
    let next = 0
    let ok = 0
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < steps.length; i = next++) {
        const t = performance.now()
        try {
          await step(steps[i] as Step)
          ok++
          latencies.push(performance.now() - t)
        } catch (err) {
          meter.recordError(name, err) // counted, never retried
        }
      }
    }))
    if (server === undefined || before === undefined) return undefined
    const after = await meter.snapshot()
    meter.recordForeign(before, after)
    latencies.sort((a, b) => a - b)
    return {
      perSec: ok / ((after.at - before.at) / 1000),
      serverCpuUs: (cpuOf(before, after, server) * 1000) / ok,
      redisCpuUs: ((after.redisMs - before.redisMs) * 1000) / ok,
      p99Ms: percentile(latencies, 99),
    }
  }

  return {
    async warm() {
      await run('totp', await prepareTessera(WARM), tesseraStep)
      await run('totp-floor', await prepareFloor(WARM * FLOOR_TIMES), floorStep)
    },
    async round(round) {
      const t = { lead: await prepareTessera(LEAD_IN), timed: await prepareTessera(TOTP_BATCH) }
      const f = { lead: await prepareFloor(LEAD_IN * FLOOR_TIMES), timed: await prepareFloor(TOTP_BATCH * FLOOR_TIMES) }
      const tessera = async (): Promise<TotpResult> => {
        await run('totp', t.lead, tesseraStep)
        return run('totp', t.timed, tesseraStep, idp) as Promise<TotpResult>
      }
      const floorRun = async (): Promise<TotpResult> => {
        await run('totp-floor', f.lead, floorStep)
        return run('totp-floor', f.timed, floorStep, floor) as Promise<TotpResult>
      }
      if (round % 2 === 1) {
        const a = await tessera()
        return { tessera: a, floor: await floorRun() }
      }
      const b = await floorRun()
      return { tessera: await tessera(), floor: b }
    },
    close: () => { redis.disconnect() },
  }
}
