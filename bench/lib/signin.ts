/**
 * Sign-in capacity: sign-ins through the real form (argon2id at the shipped costs, as
 * `tessera hash-password` makes them) against raw @node-rs/argon2 verifies, both as CPU per
 * operation, so "per core" holds on any number of cores; and a signed-in user's hand-over latency
 * while 50 sign-ins queue at the IdP (argon2 must not block the event loop or starve the hand-over).
 */
import { performance } from 'node:perf_hooks'
import { appendFileSync } from 'node:fs'
import { hash, verify } from '@node-rs/argon2'
import type { Agent } from 'undici'
import { formFields } from '../../test/helpers/forms.js'
import { PASSWORD, writeUsersFile } from '../../test/helpers/users.js'
import { benchBrowser, expect, type HandoverSystem } from './handovers.js'
import { cpuOf, type Meter } from './meter.js'
import type { ServerProcess } from './proc.js'
import { percentile } from './stats.js'
import { totpUsersYaml } from './totp.js'

/**
 * Users whose password hashes have the shipped costs (m=19456 KiB, t=2, p=1), one per concurrent
 * sign-in: regulation lets one user name have only a few password checks in flight at once.
 */
const CAPACITY_USERS = 64
const capacityUser = (i: number): string => `capacity${i % CAPACITY_USERS}`

/** The tests' users file plus the capacity users, hashed as `tessera hash-password` hashes, and the TOTP step's users (totp.ts). */
export async function writeBenchUsersFile(): Promise<{ file: string; phc: string }> {
  const file = writeUsersFile()
  const phc = await hash(PASSWORD)
  appendFileSync(file, Array.from({ length: CAPACITY_USERS }, (_, i) => `  ${capacityUser(i)}:\n    displayname: Capacity ${i}\n    password: "${phc}"\n`).join('') + totpUsersYaml())
  return { file, phc }
}

export interface SigninResult {
  readonly idpCpuMsPerSignin: number
  readonly argon2CpuMsPerVerify: number
  readonly signinsPerCoreS: number
  readonly argon2PerCoreS: number
  readonly handoverP99MsIdle: number
  readonly handoverP99MsUnderSignins: number
  readonly signinP50MsUnderLoad: number
}

/** Raw verifies, `concurrency` at a time for `seconds`: CPU ms per verify (this process's CPU). */
async function argon2CpuPerVerify(phc: string, seconds: number, concurrency: number): Promise<number> {
  let done = 0
  let stop = false
  const before = process.cpuUsage()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (!stop) {
      expect(await verify(phc, PASSWORD), 'argon2 verify')
      done++
    }
  }).concat([new Promise<void>((resolve) => setTimeout(() => { stop = true; resolve() }, seconds * 1000))]))
  const cpu = process.cpuUsage(before)
  return (cpu.user + cpu.system) / 1000 / done
}

/** One sign-in through the IdP's form, checked: GET /login, POST, 303. */
async function signIn(agent: Agent, idpUrl: string, username: string): Promise<void> {
  const b = benchBrowser(agent)
  const form = await b.get(`${idpUrl}/login`)
  expect(form.status === 200, `login form: ${form.status}`)
  const r = await b.post(`${idpUrl}/login`, { ...formFields(form.body), username, password: PASSWORD })
  expect(r.status === 303, `sign-in: ${r.status} ${r.body.slice(0, 80)}`)
}

/** `workers` loops of sign-ins until `until` resolves; resolves to how many completed and their latencies. */
async function signInLoops(agent: Agent, idpUrl: string, workers: number, until: Promise<unknown>, meter: Meter): Promise<number[]> {
  let stop = false
  void until.then(() => { stop = true })
  const latencies: number[] = []
  await Promise.all(Array.from({ length: workers }, async (_, i) => {
    while (!stop) {
      const t = performance.now()
      try {
        await signIn(agent, idpUrl, capacityUser(i))
        latencies.push(performance.now() - t)
      } catch (err) {
        meter.recordError('signin', err)
      }
    }
  }))
  return latencies
}

/** Sequential hand-overs of one signed-in browser for `seconds`: their latencies. */
async function handoverLatencies(sys: HandoverSystem, seconds: number, meter: Meter): Promise<number[]> {
  const b = sys.browsers[0]
  expect(b !== undefined, 'a signed-in browser')
  const latencies: number[] = []
  const end = performance.now() + seconds * 1000
  while (performance.now() < end) {
    const t = performance.now()
    try {
      await sys.handover(b)
      latencies.push(performance.now() - t)
    } catch (err) {
      meter.recordError('handover-under-signins', err)
    }
  }
  return latencies.sort((x, y) => x - y)
}

export async function measureSignin(idp: ServerProcess, tessera: HandoverSystem, phc: string, agent: Agent, meter: Meter, seconds: number): Promise<SigninResult> {
  // Capacity: enough sign-ins in flight to keep every argon2 thread busy, IdP CPU per sign-in.
  const warm = signInLoops(agent, idp.url, 4, new Promise((r) => setTimeout(r, 1000)), meter)
  await warm
  const before = await meter.snapshot()
  const done = await signInLoops(agent, idp.url, 4, new Promise((r) => setTimeout(r, seconds * 1000)), meter)
  const after = await meter.snapshot()
  meter.recordForeign(before, after)
  const idpCpuMsPerSignin = cpuOf(before, after, idp) / done.length
  const argon2CpuMsPerVerify = await argon2CpuPerVerify(phc, seconds, 4)
  // Latency: a signed-in user's hand-overs alone, then while 50 sign-ins queue at the IdP.
  const idle = await handoverLatencies(tessera, Math.min(seconds, 2), meter)
  const window = handoverLatencies(tessera, seconds, meter)
  const queued = await signInLoops(agent, idp.url, 50, window, meter)
  const busy = await window
  queued.sort((x, y) => x - y)
  return {
    idpCpuMsPerSignin, argon2CpuMsPerVerify,
    signinsPerCoreS: 1000 / idpCpuMsPerSignin, argon2PerCoreS: 1000 / argon2CpuMsPerVerify,
    handoverP99MsIdle: percentile(idle, 99), handoverP99MsUnderSignins: percentile(busy, 99),
    signinP50MsUnderLoad: percentile(queued, 50),
  }
}
