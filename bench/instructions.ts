/**
 * Instructions per page view, counted by valgrind's callgrind in one app process: the plugin's app
 * (bench/servers/app.ts, as `npm run bench` runs it) and the bare page (bench/servers/bare.ts), each
 * alone, one after the other. And instructions per hand-over, in the IdP and the app together:
 * Tessera's (bench/servers/idp.ts with `npm start`'s Node flags, and app.ts) and the bare floor's
 * (bench/servers/bare.ts), driven by the bench's own checked hand-over loop. A count does not depend
 * on what else the machine is doing, so a step too small for the bench's timing noise can still be
 * told apart (bench/README.md, issue 17). It counts user-space instructions only: the kernel's
 * socket work, the same for both, is left out.
 *
 *   node dist/bench/instructions.js                   # page views: 4,000 of warm-up, 5,000 counted
 *   INSTR_ONLY=plugin INSTR_WARMUP=4000 INSTR_COUNT=5000 node dist/bench/instructions.js
 *   INSTR_ONLY=fastify-session node dist/bench/instructions.js   # the @fastify/session baseline's page view
 *   INSTR_ONLY=handover,bare-handover node dist/bench/instructions.js   # hand-overs: 5,000 of warm-up, 2,000 counted
 *
 * For hand-overs each process is counted per thread: the main thread (JavaScript, the event loop)
 * repeats within a few per cent; V8's helper threads (compilers, concurrent GC) move by tens of per
 * cent. `INSTR_APP_FLAGS` gives both apps, Tessera's and the bare one, Node flags (an experiment; the
 * bench's apps have none).
 *
 * `INSTR_PROFILE=1` also runs every counted process with `--perf-basic-prof` and writes, beside each
 * main thread's dump, `<name>.profile.cg` with V8's code named (lib/jit-symbols.ts): read it with
 * `callgrind_annotate --inclusive=yes` for instructions by JavaScript function. The flag keeps V8
 * from moving code, so compare counts from profiled runs only with each other.
 *
 * Needs valgrind (Debian's package); about a minute per process. Not part of `npm test`. Build first.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { startBenchRedis } from './lib/redis.js'
import { ServerProcess } from './lib/proc.js'
import { storesFor } from '../test/helpers/stores.js'
import { signedInSession } from './lib/signed-in.js'
import type { Handle } from '../src/shared/session.js'
import { keyringOf, newKey } from '../test/helpers/sync-keys.js'
import { encodeHandle } from '../src/shared/handle-cookie.js'
import { resolveOptions } from '../src/remote/options.js'
import { formatAppKeys } from '../src/shared/app-keys.js'
import { USERNAME, DISPLAY_NAME, PASSWORD } from '../test/helpers/users.js'
import { freePort } from '../test/helpers/net.js'
import { Agent, Pool } from 'undici'
import { benchBrowser, expect, redirectHandover, tesseraSignIn, withRetry } from './lib/handovers.js'
import { HOSTS } from './lib/settings.js'
import { startFlags } from './lib/servers.js'
import { writeBenchUsersFile } from './lib/signin.js'
import { symbolizeCallgrind } from './lib/jit-symbols.js'

const WARMUP = Number(process.env.INSTR_WARMUP ?? 4000)
const COUNT = Number(process.env.INSTR_COUNT ?? 5000)
const HANDOVER_WARMUP = Number(process.env.INSTR_HANDOVER_WARMUP ?? 5000)
const HANDOVER_COUNT = Number(process.env.INSTR_HANDOVER_COUNT ?? 2000)
const ONLY = (process.env.INSTR_ONLY ?? 'plugin,bare').split(',')
const PROFILE = process.env.INSTR_PROFILE === '1'
const CONNECTIONS = 10
const HOST = '127.0.0.2'
const IDP = 'http://127.0.0.1:9' // never called: every page view here is signed in

interface Target { name: string; script: string; config: Record<string, unknown>; cookies: (redis: Redis, origin: string) => Promise<string[]> }

const syncKeys = newKey('k1')
const sessionSecret = randomBytes(32).toString('base64url')

const targets: Target[] = [
  {
    name: 'plugin',
    script: 'app.js',
    config: { syncKeys, sessionSecret, logLevel: 'warn', autoPipelining: false, idpUrl: IDP },
    // One session per connection, each with the IdP's handle, the app's (a real redemption) and a data key.
    cookies: async (redis, origin) => {
      const stores = storesFor(redis, { keyring: keyringOf(syncKeys) })
      const { cookieName } = resolveOptions({ idpUrl: IDP, origin, appKeys: formatAppKeys(keyringOf(syncKeys), origin), redis, sessionSecret })
      const user = { username: USERNAME, displayName: DISPLAY_NAME, email: '', groups: [] }
      const out: string[] = []
      for (let i = 0; i < CONNECTIONS; i++) {
        const { apps: [handle] } = await signedInSession(stores, user, { idleMs: 3_600_000, absoluteMs: 28_800_000 }, IDP, [origin], 'tessera-bench')
        out.push(`${cookieName}=${encodeHandle(handle as Handle, sessionSecret, origin)}`)
      }
      return out
    },
  },
  {
    name: 'bare',
    script: 'bare.js',
    config: { role: 'app', peerUrl: IDP, key: randomBytes(32).toString('base64url') },
    cookies: async (redis) => {
      const out: string[] = []
      for (let i = 0; i < CONNECTIONS; i++) {
        const sid = randomBytes(16).toString('base64url')
        await redis.set(`bare:s:${sid}`, JSON.stringify({ user: { username: USERNAME } }), 'PX', 3_600_000)
        out.push(`s=${sid}`)
      }
      return out
    },
  },
  {
    // The baseline the issue compares the page view with (rolling: false, logging at the app's level).
    name: 'fastify-session',
    script: 'fastify-session.js',
    config: { rolling: false, sessionSecret, logLevel: 'warn' },
    cookies: async (_redis, origin) => {
      const out: string[] = []
      for (let i = 0; i < CONNECTIONS; i++) {
        const res = await fetch(`${origin}/login`, {
          method: 'POST', redirect: 'manual',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ username: USERNAME, password: PASSWORD }).toString(),
        })
        const sid = /^(sid=[^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1]
        if (res.status !== 303 || sid === undefined) throw new Error(`fastify-session sign-in answered ${res.status}`)
        out.push(sid)
      }
      return out
    },
  },
]

async function drive(origin: string, cookies: readonly string[], n: number): Promise<void> {
  const pool = new Pool(origin, { connections: CONNECTIONS })
  let started = 0
  await Promise.all(cookies.map(async (cookie) => {
    while (started < n) {
      started++
      const res = await pool.request({ path: '/private', method: 'GET', headers: { cookie, accept: 'text/html' } })
      await res.body.text()
      if (res.statusCode !== 200) throw new Error(`page view answered ${res.statusCode}`)
    }
  }))
  await pool.close()
}

/** Instructions counted in a process: every thread, and the main thread alone (the JavaScript and the event loop). */
interface Counted { all: number; main: number }

/** A bench server under callgrind, instrumentation off until `instrumentOn`; `dumpTotal` reads what was counted since. */
class CountedServer {
  readonly process: ServerProcess
  readonly #out: string

  constructor(name: string, script: string, config: Record<string, unknown> & { host: string; port: number; redisUrl: string }, dir: string, nodeFlags: readonly string[] = []) {
    this.#out = join(dir, `callgrind.${name}`)
    this.process = new ServerProcess(name, new URL(`./servers/${script}`, import.meta.url), config, {
      logFile: join(dir, `${name}.log`),
      execPath: 'valgrind',
      // Instrumentation off until the warm-up is done; JIT code needs the self-modifying-code check.
      execArgv: ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', '--separate-threads=yes', `--callgrind-out-file=${this.#out}`, process.execPath,
        ...(PROFILE ? ['--perf-basic-prof'] : []), ...nodeFlags],
    })
  }

  instrumentOn(): void {
    execFileSync('callgrind_control', ['--instr=on', String(this.process.pid)], { stdio: 'ignore' })
  }

  /**
   * Instructions counted since `instrumentOn`. The main thread's count repeats best; V8's helper
   * threads (compilers, concurrent GC) vary from run to run by tens of per cent.
   */
  dumpTotal(): Counted {
    execFileSync('callgrind_control', ['--dump', String(this.process.pid)], { stdio: 'ignore' })
    // The first dump is `<out>.1-<thread>`: what was counted since instrumentation began, per thread.
    const threads = readdirSync(dirname(this.#out)).filter((f) => f.startsWith(`${basename(this.#out)}.1-`)).sort()
    if (threads.length === 0) throw new Error(`${this.process.name}: no callgrind dump ${this.#out}.1-*`)
    if (PROFILE) {
      // valgrind runs node in its own process, so the map is named for the same pid.
      const out = join(dirname(this.#out), `${this.process.name}.profile.cg`)
      const named = symbolizeCallgrind(join(dirname(this.#out), threads[0] as string), join(tmpdir(), `perf-${this.process.pid}.map`), out)
      process.stderr.write(`${this.process.name}: ${out} (${named} JIT functions named)\n`)
    }
    const per = threads.map((f) => {
      const totals = /^(?:totals|summary): (\d+)/m.exec(readFileSync(join(dirname(this.#out), f), 'utf8'))?.[1]
      if (totals === undefined) throw new Error(`${this.process.name}: no totals in ${f}`)
      return Number(totals)
    })
    return { all: per.reduce((a, b) => a + b, 0), main: per[0] as number }
  }
}

/** Instructions per page view in `target`'s process, counted over COUNT page views after WARMUP. */
async function count(target: Target, redisUrl: string, dir: string, port: number): Promise<Counted> {
  const origin = `http://${HOST}:${port}`
  const server = new CountedServer(target.name, target.script, { host: HOST, port, redisUrl, ...target.config }, dir)
  const redis = new Redis(redisUrl)
  try {
    await server.process.ready
    const cookies = await target.cookies(redis, origin)
    await drive(origin, cookies, WARMUP)
    server.instrumentOn()
    await drive(origin, cookies, COUNT)
    const c = server.dumpTotal()
    return { all: c.all / COUNT, main: c.main / COUNT }
  } finally {
    redis.disconnect()
    await server.process.stop()
  }
}

interface HandoverCount { provider: Counted; app: Counted }

/**
 * Instructions per hand-over in the provider (IdP) and the app, each under callgrind, counted over
 * HANDOVER_COUNT hand-overs after HANDOVER_WARMUP; CONNECTIONS virtual users, signed in once as the
 * bench signs them in, each running the bench's checked hand-over loop.
 */
async function countHandovers(kind: 'handover' | 'bare-handover', redisUrl: string, dir: string): Promise<HandoverCount> {
  const [providerHost, appHost] = kind === 'handover' ? [HOSTS.idp, HOSTS.app] : [HOSTS.bareIdp, HOSTS.bareApp]
  const [providerPort, appPort] = [await freePort(providerHost), await freePort(appHost)]
  const providerUrl = `http://${providerHost}:${providerPort}`
  const appUrl = `http://${appHost}:${appPort}`
  let provider: CountedServer
  let app: CountedServer
  const appFlags = (process.env.INSTR_APP_FLAGS ?? '').split(' ').filter(Boolean)
  if (kind === 'handover') {
    const users = await writeBenchUsersFile()
    provider = new CountedServer('idp', 'idp.js', {
      host: providerHost, port: providerPort, redisUrl, knownRemoteHosts: appUrl, syncKeys, sessionSecret: randomBytes(32).toString('base64url'),
      usersFile: users.file, factorKeys: `f1:${randomBytes(32).toString('base64url')}`, logLevel: 'warn', autoPipelining: false,
    }, dir, startFlags())
    app = new CountedServer('app', 'app.js', { host: appHost, port: appPort, redisUrl, idpUrl: providerUrl, syncKeys, sessionSecret, logLevel: 'warn', autoPipelining: false }, dir, appFlags)
  } else {
    const key = randomBytes(32).toString('base64url')
    // The IdP's Node flags, as the bench gives the bare IdP; INSTR_BARE_IDP_FLAGS=none for none.
    const bareIdpFlags = process.env.INSTR_BARE_IDP_FLAGS === 'none' ? [] : startFlags()
    provider = new CountedServer('bare-idp', 'bare.js', { host: providerHost, port: providerPort, redisUrl, role: 'idp', peerUrl: appUrl, key }, dir, bareIdpFlags)
    app = new CountedServer('bare-app', 'bare.js', { host: appHost, port: appPort, redisUrl, role: 'app', peerUrl: providerUrl, key }, dir, appFlags)
  }
  const agent = new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 })
  try {
    await Promise.all([provider.process.ready, app.process.ready])
    const browsers = Array.from({ length: CONNECTIONS }, () => benchBrowser(agent))
    for (const b of browsers) {
      if (kind === 'handover') await withRetry('Tessera sign-in', () => tesseraSignIn(b, appUrl, providerUrl))
      else expect((await b.get(`${providerUrl}/bare-sign-in?user=${USERNAME}`)).status === 200, 'bare sign-in')
    }
    const run = async (n: number): Promise<void> => {
      let started = 0
      await Promise.all(browsers.map(async (b) => {
        while (started < n) {
          started++
          await redirectHandover(b, appHost, appUrl, providerUrl)
        }
      }))
    }
    await run(HANDOVER_WARMUP)
    provider.instrumentOn()
    app.instrumentOn()
    await run(HANDOVER_COUNT)
    const per = (c: Counted): Counted => ({ all: c.all / HANDOVER_COUNT, main: c.main / HANDOVER_COUNT })
    return { provider: per(provider.dumpTotal()), app: per(app.dumpTotal()) }
  } finally {
    await agent.close()
    await Promise.all([provider.process.stop(), app.process.stop()])
  }
}

/**
 * Under valgrind a process runs some 50 times slower, and now and then a Redis command outlasts the
 * servers' 2-second timeout (a 503 in the driver's checks): such a run is started again, up to 3 times.
 */
async function withAttempts<T>(what: string, run: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run()
    } catch (err) {
      if (attempt >= 3) throw err
      process.stderr.write(`${what}: ${(err as Error).message}; starting again (attempt ${attempt + 1} of 3)\n`)
    }
  }
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US').padStart(9)

async function main(): Promise<void> {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
  const dir = mkdtempSync(join(tmpdir(), 'tessera-instructions-'))
  const redis = await startBenchRedis()
  const results: Record<string, number> = {}
  const handovers: Record<string, HandoverCount> = {}
  try {
    let port = 47_100 + Math.floor(Math.random() * 1000)
    for (const target of targets.filter((t) => ONLY.includes(t.name))) {
      const c = await count(target, redis.url, dir, port++)
      results[target.name] = c.all
      process.stdout.write(`${target.name.padEnd(14)} ${fmt(c.all)} instructions per page view (main thread ${fmt(c.main).trim()}; user space, ${COUNT.toLocaleString('en-US')} counted after ${WARMUP.toLocaleString('en-US')})\n`)
    }
    for (const kind of (['handover', 'bare-handover'] as const).filter((k) => ONLY.includes(k))) {
      const h = await withAttempts(kind, () => countHandovers(kind, redis.url, dir))
      handovers[kind] = h
      const both = (c: Counted): string => `${fmt(c.all).trim()} (main thread ${fmt(c.main).trim()})`
      process.stdout.write(`${kind.padEnd(14)} ${fmt(h.provider.all + h.app.all)} instructions per hand-over (main threads ${fmt(h.provider.main + h.app.main).trim()}): provider ${both(h.provider)}, app ${both(h.app)} (user space, ${HANDOVER_COUNT.toLocaleString('en-US')} counted after ${HANDOVER_WARMUP.toLocaleString('en-US')})\n`)
    }
  } finally {
    await redis.stop()
  }
  if (results.plugin !== undefined && results.bare !== undefined) process.stdout.write(`plugin / bare ${(results.plugin / results.bare).toFixed(2)}\n`)
  const [t, b] = [handovers.handover, handovers['bare-handover']]
  if (t !== undefined && b !== undefined) {
    const ratio = (k: keyof Counted): string => `${((t.provider[k] + t.app[k]) / (b.provider[k] + b.app[k])).toFixed(2)} (provider ${(t.provider[k] / b.provider[k]).toFixed(2)}, app ${(t.app[k] / b.app[k]).toFixed(2)})`
    process.stdout.write(`hand-over / bare: all threads ${ratio('all')}; main threads ${ratio('main')}\n`)
  }
  process.stdout.write(`${JSON.stringify({ instructions_per_pageview: results, instructions_per_handover: handovers, warmup: WARMUP, counted: COUNT, handover_warmup: HANDOVER_WARMUP, handovers_counted: HANDOVER_COUNT })}\n`)
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`)
  process.exit(1)
})
