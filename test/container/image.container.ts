/**
 * The image, built from the Dockerfile as it is and run as a user would run it: the IdP and the
 * example app from it, with host networking, against this test's own redis-server. Health, the
 * HEALTHCHECK's verdict, a real sign-in through both containers, a non-root process on a read-only
 * root filesystem (as deploy/kubernetes sets it), `tessera` and `npx tessera` as commands that never
 * rebuild the image, the forward-auth gate (`tessera gate`) healthy by the same HEALTHCHECK, and
 * SIGTERM stops with Redis up, frozen (a request in flight) and down, and while the process still starts.
 * `npm run test:container`; not part of `npm test`.
 */
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hashSync } from '@node-rs/argon2'
import { DEFAULT_COSTS } from '../../src/idp/argon2-phc.js'
import { Browser } from '../helpers/browser.js'
import { freePort } from '../helpers/net.js'
import { startRedis, type TestRedis } from '../helpers/redis-server.js'
import { signInThrough, whoAmI } from './flow.js'
import { exec, podman, stopWithinDeadline, whyNoPodman } from './podman.js'
import { prepareImages, TESSERA_IMAGE } from './stand-in.js'

const skip = whyNoPodman()

const run = `tessera-test-${process.pid}`
const idpName = `${run}-idp`
const appName = `${run}-app`
const gateName = `${run}-gate`
let redis: TestRedis
let idpUrl: string
let appUrl: string
let gatePort: number
// The image runs with NODE_ENV=production, which refuses examples/users.yml's published hash: alice
// gets a password of this run's own, in a users file mounted read-only as deploy/kubernetes mounts it.
const user = { username: 'alice', password: randomBytes(12).toString('base64url') }

before(async () => {
  if (skip !== undefined) return
  await prepareImages()

  redis = await startRedis()
  const [idpPort, appPort] = await Promise.all([freePort('127.0.0.1'), freePort('127.0.0.2')])
  gatePort = await freePort('127.0.0.1')
  idpUrl = `http://127.0.0.1:${idpPort}`
  appUrl = `http://127.0.0.2:${appPort}`
  const syncKeys = `k1:${randomBytes(32).toString('base64url')}`
  // The image's defaults (NODE_ENV=production, HOST=0.0.0.0: the HEALTHCHECK asks 127.0.0.1) but
  // the ports; fresh secrets. The browser reaches the app at 127.0.0.2, a host of its own.
  await create(idpName, [
    '-e', `REDIS_URL=${redis.url}`, '-e', `PORT=${idpPort}`, '-e', `PUBLIC_URL=${idpUrl}`,
    '-e', `KNOWN_REMOTE_HOSTS=${appUrl}`, '-e', `SYNC_KEYS=${syncKeys}`,
    '-e', `SESSION_SECRET=${randomBytes(32).toString('base64url')}`, '-e', 'USERS_FILE=/etc/tessera/users.yml',
    '-v', `${usersFile()}:/etc/tessera/users.yml:ro,z`,
  ], [])
  await create(appName, [
    '-e', `REDIS_URL=${redis.url}`, '-e', `PORT=${appPort}`, '-e', `APP_ORIGIN=${appUrl}`,
    '-e', `IDP_URL=${idpUrl}`, '-e', `SYNC_KEYS=${syncKeys}`, '-e', `APP_SESSION_SECRET=${randomBytes(32).toString('base64url')}`,
  ], ['node', 'dist/examples/app-server.js'])
})

after(async () => {
  if (skip !== undefined) return
  for (const name of [idpName, appName, gateName]) {
    const logs = await exec('podman', ['logs', '--tail', '5', name])
    if (logs.code === 0 && logs.stdout !== '') process.stdout.write(`last lines of ${name}:\n${logs.stdout.replace(/^/gm, '  ')}\n`)
    await exec('podman', ['rm', '--force', '--time', '0', name])
  }
  await redis?.stop()
})

/** `user` in a users file the container's unprivileged user can read. */
function usersFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-image-users-'))
  chmodSync(dir, 0o755)
  const file = join(dir, 'users.yml')
  writeFileSync(file, `users:\n  ${user.username}:\n    displayname: Alice Example\n    password: "${hashSync(user.password, DEFAULT_COSTS)}"\n`, { mode: 0o644 })
  return file
}

/** A container of the image, not started. Read-only root, no tmpfs: as readOnlyRootFilesystem. */
async function create(name: string, env: string[], cmd: string[]): Promise<void> {
  await exec('podman', ['rm', '--force', '--time', '0', name])
  await podman(['create', '--name', name, '--network', 'host', '--read-only', '--read-only-tmpfs=false', ...env, TESSERA_IMAGE, ...cmd])
}

async function startAndWait(name: string, url: string): Promise<void> {
  await podman(['start', name])
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${name} never answered /healthz`)
}

test('the IdP and the app start from the image, healthy by their HEALTHCHECK, and sign a user in', { skip }, async () => {
  await startAndWait(idpName, idpUrl)
  await startAndWait(appName, appUrl)
  assert.deepEqual(await (await fetch(`${idpUrl}/readyz`)).json(), { status: 'ready' })
  const labels = JSON.parse(await podman(['image', 'inspect', '--format', '{{json .Config.Labels}}', TESSERA_IMAGE])) as Record<string, string>
  assert.equal(labels['org.opencontainers.image.title'], 'Tessera IdP', 'the OCI labels are on the image')
  // The HEALTHCHECK survived the build (--format docker) and passes; podman runs it on demand here.
  assert.match(await podman(['inspect', '--format', '{{json .Config.Healthcheck}}', idpName]), /healthcheck\.js/)
  for (const name of [idpName, appName]) {
    const check = await exec('podman', ['healthcheck', 'run', name])
    assert.equal(check.code, 0, `${name}: HEALTHCHECK ${check.stdout}${check.stderr}`)
  }
  const b = new Browser()
  const form = await signInThrough(b, appUrl, user)
  assert.equal(new URL(form).origin, idpUrl, 'the sign-in form came from the IdP container')
  assert.equal(await whoAmI(b, appUrl), 'alice')
})

test('the server runs as the image\'s non-root user, uid 1000, as PID 1', { skip }, async () => {
  for (const name of [idpName, appName]) {
    const status = await podman(['exec', name, 'cat', '/proc/1/status'])
    assert.match(status, /^Uid:\s+1000\s+1000\s+1000\s+1000$/m, `${name}: uid`)
    assert.match(status, /^Gid:\s+1000\s+1000\s+1000\s+1000$/m, `${name}: gid`)
    assert.match(await podman(['exec', name, 'cat', '/proc/1/cmdline']), /^node\0(--[^\0]+\0)*dist\//, `${name}: PID 1 is the server itself (signals reach it)`)
  }
})

test('`tessera` and `npx tessera` are commands in the image, and neither installs nor rebuilds anything', { skip }, async () => {
  // `tessera` as the image's user, in the running IdP container (read-only root), with its environment.
  assert.match(await podman(['exec', idpName, 'tessera', 'gen-key']), /^[\w-]+:[\w-]{43}\n$/, 'tessera gen-key')
  assert.match(await podman(['exec', idpName, 'tessera', 'app-key', appUrl]), /^k1\.[\w-]+\.[\w-]+\n$/, 'tessera app-key from the IdP\'s SYNC_KEYS')
  // npx needs a writable home for npm's cache, so on a writable root, as the image's user and as root:
  // `npx tessera` once installed /app as a package and ran its `prepare` (`rm -rf dist && tsc`),
  // which as root deleted dist. Now dist is unchanged afterwards, and no build script is left to run.
  // No network: an npx that tried to install would fail.
  const script = 'before=$(find dist -type f | sort | xargs md5sum | md5sum) && npx tessera gen-key && tessera gen-key ' +
    '&& ! npm run build 2>/dev/null && test "$(find dist -type f | sort | xargs md5sum | md5sum)" = "$before" && test -x dist/src/cli/main.js && echo dist-intact'
  for (const user of ['node', 'root']) {
    const out = await podman(['run', '--rm', '--user', user, '--network', 'none', '--name', `${run}-cli`, TESSERA_IMAGE, 'sh', '-c', script])
    assert.match(out, /^[\w-]+:[\w-]{43}\n[\w-]+:[\w-]{43}\ndist-intact\n$/, `as ${user}: ${out}`)
  }
})

test('`tessera gate` runs from the image on all its addresses, healthy by the same HEALTHCHECK, and stops within the deadline', { skip }, async () => {
  const appKeys = (await podman(['exec', idpName, 'tessera', 'app-key', appUrl])).trim()
  // The image's own GATE_HOST (0.0.0.0); the HEALTHCHECK must find the gate on GATE_PORT, not PORT.
  await create(gateName, [
    '-e', `REDIS_URL=${redis.url}`, '-e', `GATE_PORT=${gatePort}`, '-e', `IDP_URL=${idpUrl}`,
    '-e', `GATE_SESSION_SECRET=${randomBytes(32).toString('base64url')}`, '-e', `FORWARD_AUTH_HOSTS=${appUrl}=${appKeys}`,
    '-e', 'FORWARD_AUTH_PROXIES=127.0.0.1',
  ], ['tessera', 'gate'])
  await startAndWait(gateName, `http://127.0.0.1:${gatePort}`)
  assert.deepEqual(await (await fetch(`http://127.0.0.1:${gatePort}/healthz`)).json(), { status: 'ok' })
  const check = await exec('podman', ['healthcheck', 'run', gateName])
  assert.equal(check.code, 0, `${gateName}: HEALTHCHECK ${check.stdout}${check.stderr}`)
  const asked = { 'x-forwarded-proto': 'http', 'x-forwarded-host': new URL(appUrl).host, 'x-forwarded-uri': '/private', 'x-forwarded-method': 'GET' }
  const nav = await fetch(`http://127.0.0.1:${gatePort}/api/authz/forward-auth`, { headers: { ...asked, accept: 'text/html' }, redirect: 'manual' })
  assert.equal(nav.status, 302, 'a navigation without a session goes to the IdP')
  assert.ok(nav.headers.get('location')?.startsWith(`${idpUrl}/login?callback=`))
  assert.match(await podman(['exec', gateName, 'cat', '/proc/1/status']), /^Uid:\s+1000\s/m, 'the gate runs as uid 1000')
  await stopWithinDeadline(gateName)
})

test('with Redis up, SIGTERM stops both containers cleanly within the deadline', { skip }, async () => {
  for (const name of [idpName, appName]) await stopWithinDeadline(name)
})

test('with Redis frozen, a request in flight is answered and both containers stop within the deadline', { skip }, async () => {
  await startAndWait(idpName, idpUrl)
  await startAndWait(appName, appUrl)
  redis.freeze() // connected, answering nothing: a hung or partitioned Redis
  try {
    const inFlight = fetch(`${idpUrl}/readyz`).then(async (res) => { await res.arrayBuffer(); return res.status })
    // Well into Redis's 2 s command timeout: the answer comes about 1 s after the signal.
    await new Promise((r) => setTimeout(r, 1000))
    await stopWithinDeadline(idpName)
    assert.equal(await inFlight, 503, 'the request in flight got its answer')
    await stopWithinDeadline(appName)
  } finally {
    redis.thaw()
  }
})

test('with Redis down, both containers still stop cleanly within the deadline', { skip }, async () => {
  await startAndWait(idpName, idpUrl)
  await startAndWait(appName, appUrl)
  await redis.stop()
  assert.equal((await fetch(`${idpUrl}/readyz`)).status, 503, 'the IdP sees Redis gone')
  for (const name of [idpName, appName]) await stopWithinDeadline(name)
})

test('stopped while still starting (Redis unreachable), PID 1 handles SIGTERM and stops within the deadline', { skip }, async () => {
  // Redis is still down from the test before. PID 1 ignores signals it has no handler for, so a
  // handler installed only once the server listens would leave this stop to SIGKILL, 10 s later.
  for (const name of [idpName, appName]) {
    const since = new Date().toISOString()
    await podman(['start', name])
    await untilLogged(name, since, /redis connection error/)
    await stopWithinDeadline(name)
  }
})

/** Waits for `pattern` in what `name` logged since `since` (an ISO time): a started container's logs hold its earlier runs too. */
async function untilLogged(name: string, since: string, pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (pattern.test((await exec('podman', ['logs', '--since', since, name])).stdout)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${name} never logged ${pattern}`)
}
