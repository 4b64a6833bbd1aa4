/**
 * Instructions per page view, counted by valgrind's callgrind in one app process: the plugin's app
 * (bench/servers/app.ts, as `npm run bench` runs it) and the bare page (bench/servers/bare.ts), each
 * alone, one after the other. A count does not depend on what else the machine is doing, so a step
 * too small for the bench's timing noise can still be told apart (bench/README.md, issue 17). It
 * counts user-space instructions only: the kernel's socket work, the same for both, is left out.
 *
 *   node dist/bench/instructions.js                   # both: 4,000 page views of warm-up, 5,000 counted
 *   INSTR_ONLY=plugin INSTR_WARMUP=4000 INSTR_COUNT=5000 node dist/bench/instructions.js
 *
 * Needs valgrind (Debian's package); about a minute per app. Not part of `npm test`. Build first.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { Pool } from 'undici'
import { startBenchRedis } from './lib/redis.js'
import { ServerProcess } from './lib/proc.js'
import { storesFor } from '../test/helpers/stores.js'
import { signedInSession } from './lib/signed-in.js'
import type { Handle } from '../src/shared/session.js'
import { keyringOf, newKey } from '../test/helpers/sync-keys.js'
import { encodeHandle } from '../src/shared/handle-cookie.js'
import { resolveOptions } from '../src/remote/options.js'
import { formatAppKeys } from '../src/shared/app-keys.js'
import { USERNAME, DISPLAY_NAME } from '../test/helpers/users.js'

const WARMUP = Number(process.env.INSTR_WARMUP ?? 4000)
const COUNT = Number(process.env.INSTR_COUNT ?? 5000)
const ONLY = (process.env.INSTR_ONLY ?? 'plugin,bare').split(',')
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

/** Instructions per page view in `target`'s process, counted over COUNT page views after WARMUP. */
async function count(target: Target, redisUrl: string, dir: string, port: number): Promise<number> {
  const origin = `http://${HOST}:${port}`
  const out = join(dir, `callgrind.${target.name}`)
  const server = new ServerProcess(target.name, new URL(`./servers/${target.script}`, import.meta.url), { host: HOST, port, redisUrl, ...target.config }, {
    logFile: join(dir, `${target.name}.log`),
    execPath: 'valgrind',
    // Instrumentation off until the warm-up is done; JIT code needs the self-modifying-code check.
    execArgv: ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath],
  })
  const redis = new Redis(redisUrl)
  try {
    await server.ready
    const cookies = await target.cookies(redis, origin)
    await drive(origin, cookies, WARMUP)
    const pid = String(server.pid)
    execFileSync('callgrind_control', ['--instr=on', pid], { stdio: 'ignore' })
    await drive(origin, cookies, COUNT)
    execFileSync('callgrind_control', ['--dump', pid], { stdio: 'ignore' })
  } finally {
    redis.disconnect()
    await server.stop()
  }
  // The dump taken after the counted page views is `<out>.1`: what was counted since instrumentation began.
  const dump = `${out}.1`
  if (!existsSync(dump)) throw new Error(`${target.name}: no callgrind dump ${dump}`)
  const totals = /^(?:totals|summary): (\d+)/m.exec(readFileSync(dump, 'utf8'))?.[1]
  if (totals === undefined) throw new Error(`${target.name}: no totals in ${dump}`)
  return Number(totals) / COUNT
}

async function main(): Promise<void> {
  execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
  const dir = mkdtempSync(join(tmpdir(), 'tessera-instructions-'))
  const redis = await startBenchRedis()
  const results: Record<string, number> = {}
  try {
    let port = 47_100 + Math.floor(Math.random() * 1000)
    for (const target of targets.filter((t) => ONLY.includes(t.name))) {
      results[target.name] = await count(target, redis.url, dir, port++)
      process.stdout.write(`${target.name.padEnd(8)} ${Math.round(results[target.name] as number).toLocaleString('en-US').padStart(9)} instructions per page view (user space, ${COUNT.toLocaleString('en-US')} counted after ${WARMUP.toLocaleString('en-US')})\n`)
    }
  } finally {
    await redis.stop()
  }
  if (results.plugin !== undefined && results.bare !== undefined) process.stdout.write(`plugin / bare ${(results.plugin / results.bare).toFixed(2)}\n`)
  process.stdout.write(`${JSON.stringify({ instructions_per_pageview: results, warmup: WARMUP, counted: COUNT })}\n`)
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`)
  process.exit(1)
})
