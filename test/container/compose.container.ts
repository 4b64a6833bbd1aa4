/**
 * docker-compose.yml through Debian's podman-compose (1.0.3), on the stand-in images: Redis with its
 * append-only file, the IdP and the example app. A sign-in through them, the session surviving a
 * restart of the Redis container, every container's health check, and SIGTERM stops of the IdP and
 * the app with their Redis hung (a request in flight) and gone. `npm run test:container`; not part of `npm test`.
 *
 * The file is used as shipped but for two changes, made in a copy the test writes:
 * - podman-compose 1.0.3 joins a list-form `healthcheck.test` with quoted spaces and hands it to
 *   `sh -c` as one word, which breaks any argument with shell characters (the app's `node -e …`
 *   check always fails). Its own list-merging makes an override file useless (lists are appended), so
 *   the copy gives the same command in the CMD-SHELL form, quoted for sh. Docker Compose and newer
 *   podman-compose run the shipped form as it is.
 * - The published host ports are free ones, not 3000 and 3001, which something else on a shared
 *   machine may hold; the browser below maps the public names onto them.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parse } from 'yaml'
import { freePort } from '../helpers/net.js'
import { MappedBrowser, signInThrough, whoAmI } from './flow.js'
import { exec, podman, podmanCompose, stopWithinDeadline, whyNoPodman } from './podman.js'
import { prepareImages } from './stand-in.js'

const skip = whyNoPodman()
const PROJECT = 'tessera-test'
const container = (service: string): string => `${PROJECT}_${service}_1`

interface Service {
  build?: string
  ports?: string[]
  healthcheck?: { test?: string[] | string }
}

let dir: string
let file: string
/** Public origin (as the compose file names it) -> where the test reaches it. */
const map: Record<string, string> = {}

/** POSIX sh single-quoting. */
const shQuote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'"'"'`)}'`)

/** The copy of docker-compose.yml this test runs: see the file's comment for the two changes. */
async function composeForTest(): Promise<string> {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> }
  for (const service of Object.values(compose.services)) {
    if (service.build !== undefined) service.build = resolve(service.build)
    const check = service.healthcheck?.test
    if (Array.isArray(check) && check[0] === 'CMD') {
      (service.healthcheck as { test: string[] }).test = ['CMD-SHELL', check.slice(1).map(shQuote).join(' ')]
    }
    if (service.ports === undefined) continue
    service.ports = await Promise.all(service.ports.map(async (p) => {
      const [hostPort, containerPort] = p.split(':')
      const port = await freePort('127.0.0.1')
      const origin = Object.keys(PUBLIC_ORIGINS).find((o) => new URL(o).port === hostPort)
      if (origin !== undefined) map[origin] = `http://${PUBLIC_ORIGINS[origin]}:${port}`
      return `${port}:${containerPort}`
    }))
  }
  // As JSON, which is YAML too: podman-compose reads YAML 1.1, where an unquoted `yes` is a boolean.
  return JSON.stringify(compose, null, 2)
}

/** The compose file's public origins, and the loopback address each is reached on (a host of its own, for cookies). */
const PUBLIC_ORIGINS: Record<string, string> = { 'http://idp.localhost:3000': '127.0.0.1', 'http://app.localhost:3001': '127.0.0.2' }

async function down(): Promise<void> {
  await exec('podman-compose', ['-p', PROJECT, '-f', file, 'down', '-v'])
  await exec('podman', ['network', 'rm', '--force', `${PROJECT}_default`])
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  let last: T | undefined
  for (let i = 0; i < 300; i++) {
    try {
      last = await probe()
      if (ok(last)) return last
    } catch { /* not answering yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${what}: still ${String(last)} after 30 s`)
}

before(async () => {
  if (skip !== undefined) return
  await prepareImages() // compose's `image: tessera`: built here, with the flags podman needs
  dir = mkdtempSync('/var/tmp/tessera-compose-')
  file = join(dir, 'docker-compose.yml')
  writeFileSync(file, await composeForTest())
  await down() // what a failed earlier run left
  await podmanCompose(['-p', PROJECT, '-f', file, 'up', '-d'])
  const idp = map['http://idp.localhost:3000'] as string
  const app = map['http://app.localhost:3001'] as string
  await until('the IdP /readyz', async () => (await fetch(`${idp}/readyz`)).status, (s) => s === 200)
  await until('the app /healthz', async () => (await fetch(`${app}/healthz`)).status, (s) => s === 200)
})

after(async () => {
  if (skip !== undefined) return
  for (const service of ['redis', 'idp', 'app']) {
    const logs = await exec('podman', ['logs', '--tail', '4', container(service)])
    process.stdout.write(`last lines of ${container(service)}:\n${logs.stdout.replace(/^/gm, '  ')}\n`)
  }
  await down()
  rmSync(dir, { recursive: true, force: true })
})

test('every service passes its health check', { skip }, async () => {
  for (const service of ['redis', 'idp', 'app']) {
    const check = await exec('podman', ['healthcheck', 'run', container(service)])
    assert.equal(check.code, 0, `${service}: ${check.stdout}${check.stderr}`)
  }
})

test('alice signs in at the app through the IdP, all three in containers', { skip }, async () => {
  const b = new MappedBrowser(map)
  const form = await signInThrough(b, 'http://app.localhost:3001')
  assert.equal(new URL(form).origin, 'http://idp.localhost:3000')
  assert.equal(await whoAmI(b, 'http://app.localhost:3001'), 'alice')
  assert.match((await b.get('http://idp.localhost:3000/')).body, /Alice Example/, 'signed in at the IdP too')
})

test('a session survives a restart of the Redis container (append-only file on its volume)', { skip }, async () => {
  const b = new MappedBrowser(map)
  await signInThrough(b, 'http://app.localhost:3001')
  await podman(['restart', '--time', '10', container('redis')])
  // The IdP and the app reconnect by themselves, by the service's name, wherever it now is.
  const user = await until('the app after the Redis restart', () => whoAmI(b, 'http://app.localhost:3001'), (v) => v !== 503)
  assert.equal(user, 'alice')
  // Each process reconnects on its own retry schedule (up to 2 s apart): the IdP may be a moment later.
  await until('the IdP /readyz after the Redis restart', async () => (await fetch(`${map['http://idp.localhost:3000']}/readyz`)).status, (s) => s === 200)
  assert.match((await b.get('http://idp.localhost:3000/')).body, /Alice Example/)
})

test('with Redis hung (paused), the IdP and the app answer the requests in flight and stop on SIGTERM within the deadline', { skip }, async () => {
  const b = new MappedBrowser(map)
  await signInThrough(b, 'http://app.localhost:3001')
  await podman(['pause', container('redis')]) // connected, answering nothing
  try {
    for (const [service, ask] of [
      ['idp', () => b.get('http://idp.localhost:3000/readyz', 'application/json')],
      ['app', () => b.get('http://app.localhost:3001/api/me', 'application/json')],
    ] as const) {
      const inFlight = ask()
      // Well into Redis's 2 s command timeout: the answer comes about 1 s after the signal.
      await new Promise((r) => setTimeout(r, 1000))
      await stopWithinDeadline(container(service))
      assert.equal((await inFlight).status, 503, `${service}: the request in flight got its answer`)
    }
  } finally {
    await podman(['unpause', container('redis')])
  }
})

test('with their Redis gone, the IdP and the app stop cleanly on SIGTERM within the deadline', { skip }, async () => {
  await podman(['start', container('idp'), container('app')])
  await until('the app /healthz', async () => (await fetch(`${map['http://app.localhost:3001']}/healthz`)).status, (s) => s === 200)
  await podman(['stop', '--time', '10', container('redis')])
  await until('the IdP /readyz', async () => (await fetch(`${map['http://idp.localhost:3000']}/readyz`)).status, (s) => s === 503)
  // The service name `redis` no longer resolves, and a reconnect's lookup may wait for the resolver's
  // timeout: it is sent from the event loop (src/shared/host-lookup.ts), so the exit does not wait for
  // it as it did for getaddrinfo on libuv's thread pool (5.0 s stops).
  for (const service of ['idp', 'app']) await stopWithinDeadline(container(service))
})
