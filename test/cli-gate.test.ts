import { test, after, before } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { formatAppKeys } from '../src/shared/app-keys.js'
import { freePort } from './helpers/net.js'
import { startRedis, type TestRedis } from './helpers/redis-server.js'
import { keyringOf, newKey } from './helpers/sync-keys.js'
import { untilStatus } from './helpers/wait.js'
import { rawRequest } from './helpers/raw-http.js'

const MAIN = resolve(new URL('../src/cli/main.js', import.meta.url).pathname)
// An empty folder, so a developer's .env never leaks in.
const cwd = mkdtempSync(join(tmpdir(), 'tessera-gate-'))
const APP = 'https://grafana.example.com'
const appKeys = formatAppKeys(keyringOf(newKey('k1')), APP)

let redis: TestRedis
before(async () => { redis = await startRedis() })
after(async () => { await redis.stop() })

function run(env: Record<string, string>): { done: Promise<{ status: number | null; stderr: string }>; stop: () => void } {
  const child = spawn(process.execPath, [MAIN, 'gate'], { cwd, env: { PATH: process.env.PATH ?? '', ...env } })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  child.stdout.resume()
  return {
    done: new Promise((ok) => child.on('close', (status) => ok({ status, stderr }))),
    stop: () => { child.kill('SIGTERM') },
  }
}

test('tessera gate names every bad variable and exits 1, printing no key', async () => {
  const { status, stderr } = await run({
    IDP_URL: 'sso.example.com', GATE_SESSION_SECRET: 'short', FORWARD_AUTH_PROXIES: 'localhost',
    FORWARD_AUTH_HOSTS: `${APP}=${appKeys} https://wiki.example.com/path=${appKeys} nonsense`, GATE_PORT: '99999', FORWARD_AUTH_SECOND_FACTOR: 'always',
  }).done
  assert.equal(status, 1)
  for (const name of ['IDP_URL', 'GATE_SESSION_SECRET', 'FORWARD_AUTH_PROXIES[0]', 'FORWARD_AUTH_HOSTS[1] origin', 'FORWARD_AUTH_HOSTS[2]', 'GATE_PORT', 'FORWARD_AUTH_SECOND_FACTOR: must be optional or required']) {
    assert.ok(stderr.includes(name), `${name} in: ${stderr}`)
  }
  assert.ok(!stderr.includes(appKeys.split('.')[1] as string), 'no key printed')
})

test('tessera gate exits 1 when it cannot listen, rather than running on no port', async () => {
  const taken = createServer()
  const port = await freePort('127.0.0.1')
  await new Promise<void>((done) => taken.listen(port, '127.0.0.1', done))
  try {
    const gate = run({
      IDP_URL: 'https://sso.example.com', REDIS_URL: redis.url, GATE_SESSION_SECRET: randomBytes(32).toString('base64url'),
      FORWARD_AUTH_HOSTS: `${APP}=${appKeys}`, FORWARD_AUTH_PROXIES: '127.0.0.1', GATE_PORT: String(port), LOG_LEVEL: 'silent',
    })
    const stuck = setTimeout(() => { gate.stop() }, 10_000) // still running after 10 s: stopped, and the test fails
    const { status, stderr } = await gate.done
    clearTimeout(stuck)
    assert.equal(status, 1, 'exited by itself')
    assert.match(stderr, /tessera gate: cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/)
  } finally {
    taken.close()
  }
})

test('tessera gate takes GATE_PORT in decimal digits only, and LOG_LEVEL from pino\'s levels', async () => {
  // Number() would read each of these ports as another one ('' as 0: any free port).
  for (const [env, expected] of [[{ GATE_PORT: '1e3' }, 'GATE_PORT'], [{ GATE_PORT: '0x10' }, 'GATE_PORT'], [{ GATE_PORT: '' }, 'GATE_PORT'], [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL: must be one of']] as const) {
    const { status, stderr } = await run({
      IDP_URL: 'https://sso.example.com', GATE_SESSION_SECRET: randomBytes(32).toString('base64url'),
      FORWARD_AUTH_HOSTS: `${APP}=${appKeys}`, FORWARD_AUTH_PROXIES: '127.0.0.1', ...env,
    }).done
    assert.equal(status, 1, JSON.stringify(env))
    assert.ok(stderr.includes(expected), `${expected} in: ${stderr}`)
    assert.equal(stderr.trim().split('\n').length, 1, 'one line')
  }
})

test('tessera gate answers for its hosts from its proxies, and stops on SIGTERM', async () => {
  const port = await freePort('127.0.0.1')
  const gate = run({
    IDP_URL: 'https://sso.example.com', REDIS_URL: redis.url, GATE_SESSION_SECRET: randomBytes(32).toString('base64url'),
    FORWARD_AUTH_HOSTS: `${APP}=${appKeys}`, FORWARD_AUTH_PROXIES: '127.0.0.1', GATE_PORT: String(port), LOG_LEVEL: 'silent',
  })
  const base = `http://127.0.0.1:${port}/api/authz/forward-auth`
  const asked = (host: string): Record<string, string> => ({ 'x-forwarded-proto': 'https', 'x-forwarded-host': host, 'x-forwarded-uri': '/d', 'x-forwarded-method': 'GET' })
  try {
    await untilStatus(base, asked('other.example.com'), 403)
    const nav = await fetch(base, { headers: { ...asked('grafana.example.com'), accept: 'text/html' }, redirect: 'manual' })
    assert.equal(nav.status, 302)
    assert.match(nav.headers.get('location') ?? '', /^https:\/\/sso\.example\.com\/login\?callback=/)
    assert.match(nav.headers.getSetCookie().join('\n'), /^__Host-tessera_state=/m, 'the host\'s own state cookie')
    const refused = await fetch(base, { headers: { ...asked('other.example.com'), accept: 'application/json' } })
    assert.equal(((await refused.json()) as { code: string }).code, 'TESSERA_ERR_FORWARD_AUTH')
    // Its other answers carry Tessera's codes too: an unknown path, a method Node's parser refuses.
    const unknown = await fetch(`http://127.0.0.1:${port}/nope`)
    assert.equal(unknown.status, 404)
    assert.equal(((await unknown.json()) as { code: string }).code, 'TESSERA_ERR_NOT_FOUND')
    const bad = await rawRequest(`http://127.0.0.1:${port}`, 'FOO /api/authz/forward-auth HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    assert.equal(bad.status, 400)
    assert.equal((JSON.parse(bad.body) as { code: string }).code, 'TESSERA_ERR_BAD_REQUEST')
  } finally {
    gate.stop()
  }
  assert.equal((await gate.done).status, 0)
})

test('tessera gate answers GET /healthz with 200, asked by anyone, with Redis unreachable too', async () => {
  // Nothing listens on this port: the gate waits its 2 s for Redis, then listens anyway.
  const [port, noRedis] = await Promise.all([freePort('127.0.0.1'), freePort('127.0.0.1')])
  const gate = run({
    IDP_URL: 'https://sso.example.com', REDIS_URL: `redis://127.0.0.1:${noRedis}`, GATE_SESSION_SECRET: randomBytes(32).toString('base64url'),
    FORWARD_AUTH_HOSTS: `${APP}=${appKeys}`, FORWARD_AUTH_PROXIES: '', GATE_PORT: String(port), LOG_LEVEL: 'silent',
  })
  try {
    // Liveness, not readiness: a container's health check must not restart the gate over Redis, and
    // the checker (the engine, a kubelet) is no listed proxy.
    await untilStatus(`http://127.0.0.1:${port}/healthz`, {}, 200)
    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    assert.deepEqual(await health.json(), { status: 'ok' })
    const asked = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'grafana.example.com', 'x-forwarded-uri': '/d', 'x-forwarded-method': 'GET' }
    const authz = await fetch(`http://127.0.0.1:${port}/api/authz/forward-auth`, { headers: { ...asked, accept: 'application/json' } })
    assert.equal(authz.status, 403, 'its authorization endpoints still refuse an unlisted caller')
  } finally {
    gate.stop()
  }
  assert.equal((await gate.done).status, 0)
})
