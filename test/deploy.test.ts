/** The container files, checked by running what they run: no Docker engine is needed. */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../src/idp/config.js'
import { freePort } from './helpers/net.js'
import { startRedis, type TestRedis } from './helpers/redis-server.js'
import { formatAppKeys } from '../src/shared/app-keys.js'
import { healthUrl } from '../src/cli/health-target.js'

type Service = { command?: string[]; environment?: Record<string, string>; healthcheck?: { test: string[] }; build?: string; image?: string }
const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> }
const dockerfile = readFileSync('Dockerfile', 'utf8')

let redis: TestRedis
const children: ChildProcess[] = []
before(async () => { redis = await startRedis() })
after(async () => {
  for (const c of children) c.kill('SIGTERM')
  await redis.stop()
})

async function waitForHealth(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${url} never became healthy`)
}

function run(cmd: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(cmd[0] as string, cmd.slice(1), { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' })
  children.push(child)
  return child
}

test('the compose file gives the IdP a configuration it accepts', () => {
  const idp = compose.services.idp as Service
  const env = { ...idp.environment } as Record<string, string>
  const config = loadConfig(env)
  assert.deepEqual(config.knownRemoteHosts, ['http://app.localhost:3001'])
  assert.equal(config.publicUrl, 'http://idp.localhost:3000')
  const app = compose.services.app?.environment ?? {}
  assert.ok(app.APP_ORIGIN !== undefined && config.knownRemoteHosts.includes(app.APP_ORIGIN))
  assert.equal(app.SYNC_KEYS, undefined, 'the app does not hold the IdP\'s keys')
  assert.equal(app.APP_KEYS, formatAppKeys(config.keyring, app.APP_ORIGIN), 'the app holds its own keys, as tessera app-key prints them')
})

test('production refuses the demo secrets the compose file and .env.example publish', () => {
  const env = { ...(compose.services.idp?.environment as Record<string, string>), NODE_ENV: 'production' }
  assert.throws(() => loadConfig(env), /SESSION_SECRET: is the published demo value.*SYNC_KEYS: holds the published demo key/)
  // ...and the demo users file the image ships, whose alice has her password in a comment.
  assert.throws(() => loadConfig(env), /USERS_FILE \(examples\/users\.yml\): users\.alice\.password: is a published demo hash/)
})

test('the compose Redis keeps an append-only file', () => {
  assert.ok((compose.services.redis?.command ?? []).join(' ').includes('--appendonly yes'))
})

test('the image runs as a non-root user, listens on 0.0.0.0 and has a HEALTHCHECK', () => {
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /HOST=0\.0\.0\.0/)
  assert.match(dockerfile, /^FROM node:24-slim AS build$/m)
  assert.match(dockerfile, /npm ci --omit=dev/)
  assert.match(dockerfile, /^HEALTHCHECK /m)
})

test('the image\'s HEALTHCHECK asks the gate on GATE_PORT when PID 1 runs `tessera gate`, else PORT', () => {
  const image = { HOST: '0.0.0.0', PORT: '3000', GATE_HOST: '0.0.0.0' } // the Dockerfile's ENV
  assert.equal(healthUrl(['node', '--max-semi-space-size=4', '--no-maglev', 'dist/src/server.js'], image), 'http://127.0.0.1:3000/healthz')
  assert.equal(healthUrl(['node', 'dist/examples/app-server.js'], { ...image, PORT: '3001' }), 'http://127.0.0.1:3001/healthz')
  for (const gate of [['node', '/usr/local/bin/tessera', 'gate'], ['node', 'dist/src/cli/main.js', 'gate'], ['/sbin/docker-init', '--', 'tessera', 'gate'],
    ['npm', 'exec', 'tessera', 'gate'], ['sh', '-c', 'exec tessera gate']]) {
    assert.equal(healthUrl(gate, image), 'http://127.0.0.1:9091/healthz', gate.join(' '))
    assert.equal(healthUrl(gate, { ...image, GATE_PORT: '8080' }), 'http://127.0.0.1:8080/healthz', gate.join(' '))
  }
  // A specific address is asked there (the process listens nowhere else); no HOST at all is loopback.
  assert.equal(healthUrl(['node', 'dist/src/cli/main.js', 'gate'], { GATE_HOST: '10.0.0.5' }), 'http://10.0.0.5:9091/healthz')
  assert.equal(healthUrl(['node', 'dist/src/server.js'], { HOST: '::1', PORT: '4000' }), 'http://[::1]:4000/healthz')
  assert.equal(healthUrl(['node', 'dist/src/server.js'], {}), 'http://127.0.0.1:3000/healthz')
  assert.equal(healthUrl([], {}), 'http://127.0.0.1:3000/healthz', 'no /proc: the IdP')
})

test('the image makes `tessera` a command and cannot rebuild (no `bin` for npx to install, no `prepare` or `build` script left)', () => {
  assert.match(dockerfile, /ln -s \/app\/dist\/src\/cli\/main\.js \/usr\/local\/bin\/tessera/)
  assert.match(dockerfile, /ln -s \.\.\/\.\.\/dist\/src\/cli\/main\.js node_modules\/\.bin\/tessera/)
  assert.match(dockerfile, /delete p\.bin; p\.scripts = \{ start: p\.scripts\.start \}/)
  assert.match(dockerfile, /GATE_HOST=0\.0\.0\.0/)
})

test('the image is labelled with its version and base, and the build context leaves out what the image must not hold', () => {
  const label = (key: string): string | undefined => new RegExp(`org\\.opencontainers\\.image\\.${key}="([^"]*)"`).exec(dockerfile)?.[1]
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; license: string }
  assert.equal(label('version'), pkg.version, 'the label follows package.json')
  assert.equal(label('licenses'), pkg.license)
  assert.equal(label('base.name'), `docker.io/library/${/^FROM (\S+)$/m.exec(dockerfile)?.[1] ?? ''}`, 'the label names the base the runtime stage is built on')
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((l) => l.trim())
  for (const entry of ['node_modules', 'dist', '.git', '.env', 'dump.rdb', 'bench', 'test']) assert.ok(ignored.includes(entry), `.dockerignore: ${entry}`)
})

test('the image CMD and HEALTHCHECK work against the built IdP, and the example app command runs', async () => {
  const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[]
  const health = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(dockerfile.slice(dockerfile.indexOf('HEALTHCHECK')))?.[1] ?? '[]') as string[]
  // The image starts the IdP exactly as `npm start` does (the same Node flags; the bench runs it so too).
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { start: string } }
  assert.deepEqual(cmd, pkg.scripts.start.split(' '))
  assert.equal(cmd.at(-1), 'dist/src/server.js')
  const port = await freePort('127.0.0.1')
  const idpEnv = { ...(compose.services.idp?.environment as Record<string, string>), REDIS_URL: redis.url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' }

  // Nothing listens yet: the health check fails.
  const down = spawnSync(health[0] as string, health.slice(1), { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, timeout: 10_000 })
  assert.equal(down.status, 1)

  run(cmd, idpEnv)
  await waitForHealth(`http://127.0.0.1:${port}/healthz`)
  const up = spawnSync(health[0] as string, health.slice(1), { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, timeout: 10_000 })
  assert.equal(up.status, 0)
  assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200)

  const app = compose.services.app as Service
  const appPort = await freePort('127.0.0.1')
  run(app.command as string[], { ...(app.environment as Record<string, string>), REDIS_URL: redis.url, PORT: String(appPort), HOST: '127.0.0.1', LOG_LEVEL: 'silent' })
  await waitForHealth(`http://127.0.0.1:${appPort}/healthz`)
  const res = await fetch(`http://127.0.0.1:${appPort}/private`, { redirect: 'manual', headers: { accept: 'text/html' } })
  assert.equal(res.status, 302)
  assert.ok(res.headers.get('location')?.startsWith('http://idp.localhost:3000/login?callback='))
})
