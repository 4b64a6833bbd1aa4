/** Every log line of a full flow and of its failures, searched for every secret value (ASVS V16.2.5). */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import ts from 'typescript'
import { Browser } from '../helpers/browser.js'
import { repoRoot } from '../helpers/callbacks.js'
import { freePort } from '../helpers/net.js'
import { type TestRedis } from '../helpers/redis-server.js'
import { formFields, PASSWORD, useStack, type Stack } from '../helpers/stack.js'
import { signInThroughA } from '../helpers/sso-scenarios.js'
import { loggerOptions } from '../../src/shared/logger.js'
import { formatAppKeys } from '../../src/shared/app-keys.js'
import { codeAt, confirmPassword, passwordOnly, postFactor, postPassword, shownCodes, shownSecret } from '../helpers/factors.js'
import { openLogin, passkeySignIn, postOptions } from '../helpers/passkeys.js'
import { SoftAuthenticator } from '../helpers/soft-authenticator.js'
import { newKey } from '../helpers/sync-keys.js'
import { keys } from '../../src/shared/keys.js'

const README_HOST = '127.0.0.4'
const readmePorts = [await freePort(README_HOST)]
while (readmePorts.length < 2) { const p = await freePort(README_HOST); if (!readmePorts.includes(p)) readmePorts.push(p) }

const lines: string[] = []
const sink = (): Writable => new Writable({ write(chunk: Buffer, _enc, done) { lines.push(...chunk.toString().split('\n').filter(Boolean)); done() } })

let redis: TestRedis
let stack: Stack
const FACTOR_KEYS = newKey('f1')
useStack((r, s) => { redis = r; stack = s }, {
    env: { LOG_LEVEL: 'trace', FACTOR_KEYS },
    idpLogger: { ...loggerOptions('trace'), stream: sink() },
    appLogger: { level: 'trace', stream: sink() },
    extraRemoteHosts: readmePorts.map((p) => `http://${README_HOST}:${p}`),
    // App B is the Express example (tessera/express), so both adapters' log lines are searched.
    adapterB: 'express',
  })

test('no password, token, cookie, state, callback, key or secret reaches a log line', async () => {
  const secrets: string[] = [PASSWORD, 'wrong-password-value', stack.config.sessionSecret]
  for (const k of stack.config.keyring.byId.values()) secrets.push(k.key.export().toString('base64url'))

  const b = new Browser()
  const first = await b.get(`${stack.appAUrl}/private?q=1`)
  const login = new URL(first.location() as string)
  secrets.push(login.searchParams.get('callback') as string, login.searchParams.get('state') as string)
  const form = await b.get(login.href)
  const fields = formFields(form.body)
  secrets.push(fields.csrf as string)
  await b.post(`${stack.idpUrl}/login`, { ...fields, username: 'alice', password: 'wrong-password-value' })
  const again = await b.get(login.href)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(again.body), username: 'alice', password: PASSWORD })
  const token = new URL(posted.location() as string).searchParams.get('token') as string
  secrets.push(token)
  await b.navigate(posted.location() as string)
  // Failures: a replayed token, a tampered one, a login without CSRF, a bad callback.
  await b.get(`${stack.appBUrl}/private?token=${encodeURIComponent(token)}`)
  await new Browser().get(`${stack.appAUrl}/private?token=${encodeURIComponent(token.slice(0, -3) + 'AAA')}`)
  await new Browser().post(`${stack.idpUrl}/login`, { username: 'alice', password: PASSWORD })
  await b.navigate(`${stack.appBUrl}/private`)
  // The sessions page: its CSRF field, ending the others, and a refused fingerprint.
  const sessionsCsrf = formFields((await b.get(`${stack.idpUrl}/sessions`)).body).csrf as string
  secrets.push(sessionsCsrf)
  await b.post(`${stack.idpUrl}/sessions/confirm`, { csrf: sessionsCsrf, password: 'wrong-password-value' })
  await b.post(`${stack.idpUrl}/sessions/confirm`, { csrf: sessionsCsrf, password: PASSWORD })
  await b.post(`${stack.idpUrl}/sessions/end-others`, { csrf: sessionsCsrf })
  await b.post(`${stack.idpUrl}/sessions/end`, { csrf: sessionsCsrf, session: 'not-a-session' })
  for (const [host, jar] of b.jars) for (const [name, value] of jar) { if (value) secrets.push(value); assert.ok(name, host) }
  for (const line of b.setCookies) secrets.push((line.split(';')[0] as string).split('=').slice(1).join('='))
  await b.post(`${stack.appAUrl}/logout`, {})

  const real = secrets.filter((s) => s.length >= 8)
  assert.ok(lines.length > 20, `captured ${lines.length} log lines`)
  assert.ok(lines.some((l) => l.includes('request rejected')), 'failures were logged')
  // Fastify's lines carry a reqId; the Express middleware's do not: both were captured.
  assert.ok(lines.some((l) => l.includes('request rejected') && !l.includes('"reqId"')), 'the Express app B logged its refusal of the replayed token')
  for (const line of lines) {
    for (const secret of real) assert.ok(!line.includes(secret), `a secret reached the log: ${line.slice(0, 200)}`)
    // No part of a session handle either (sid or handle secret are each 22+ base64url characters).
    for (const secret of real) for (const part of secret.split('.')) if (part.length >= 16) assert.ok(!line.includes(part), `part of a secret in: ${line.slice(0, 200)}`)
  }
})

/**
 * README's plugin example, run as written (two example URLs swapped for this stack's, and a
 * listen() appended): its own process, its standard output captured as its log.
 */
/** Resolves once `text` is in the child's log, or after 10 s (the assertions that follow then say what is missing). */
async function untilLogged(app: { log: () => string }, text: string): Promise<void> {
  for (let waited = 0; waited < 10_000 && !app.log().includes(text); waited += 50) await sleep(50)
}

async function runReadmeExample(port: number, swap: (source: string) => string = (s) => s): Promise<{ url: string; log: () => string; stop: () => Promise<void> }> {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8')
  const block = /## Use the plugin in your app\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  assert.ok(block, 'README has the plugin example')
  const url = `http://${README_HOST}:${port}`
  const source = swap(block)
    .replace("'https://sso.example.com'", JSON.stringify(stack.idpUrl))
    .replace("'https://shop.example.com'", JSON.stringify(url))
  assert.ok(source.includes(stack.idpUrl) && source.includes(url), 'the example\'s two URLs were found')
  const js = ts.transpileModule(`${source}\nawait app.listen({ host: '${README_HOST}', port: ${port} })\n`, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  }).outputText
  const dir = mkdtempSync(join(tmpdir(), 'tessera-readme-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(repoRoot(), join(dir, 'node_modules', 'tessera'), 'dir')
  symlinkSync(join(repoRoot(), 'node_modules', 'fastify'), join(dir, 'node_modules', 'fastify'), 'dir')
  writeFileSync(join(dir, 'app.mjs'), js)
  const child = spawn(process.execPath, [join(dir, 'app.mjs')], {
    env: { PATH: process.env.PATH, APP_KEYS: formatAppKeys(stack.config.keyring, url), REDIS_URL: redis.url, SESSION_SECRET: randomBytes(32).toString('base64url') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  for (let i = 0; ; i++) {
    const up = await fetch(`${url}/`).then((r) => r.arrayBuffer().then(() => true), () => false)
    if (up) break
    assert.ok(i < 200 && child.exitCode === null, `README's example did not start: ${out}`)
    await sleep(100)
  }
  return { url, log: () => out, stop: async () => { child.kill('SIGTERM'); await exited } }
}

/** Signs in through app A, then opens `/private` at `url`: returns the token the IdP sent there. */
async function handOverTo(url: string): Promise<string> {
  const b = await signInThroughA(stack)
  const hops = await b.navigate(`${url}/private`)
  assert.deepEqual(hops.map((h) => h.status), [302, 302, 302, 200], hops.map((h) => `${h.status} ${h.body.slice(0, 200)}`).join('\n'))
  const token = new URL(hops[1]?.location() as string).searchParams.get('token')
  assert.ok(token)
  assert.equal(hops[3]?.json<{ user: { username: string } }>().user.username, 'alice')
  return token
}

test('an app built like README\'s plugin example logs its requests but never the one-time token', async () => {
  const app = await runReadmeExample(readmePorts[0] as number)
  try {
    const token = await handOverTo(app.url)
    // The child's log arrives through a pipe, possibly after the answer: wait for the hand-over's line.
    await untilLogged(app, 'session handed over')
    const lines = app.log().split('\n').filter(Boolean)
    assert.ok(lines.some((l) => l.includes('"path":"/private"')), `the example logs its requests: ${app.log().slice(0, 500)}`)
    assert.ok(lines.some((l) => l.includes('session handed over')), 'the hand-over is logged')
    for (const line of lines) {
      assert.ok(!line.includes(token), `the token reached README's example's log: ${line.slice(0, 200)}`)
      for (const part of token.split('.')) if (part.length >= 16) assert.ok(!line.includes(part), `part of the token in: ${line.slice(0, 200)}`)
    }
  } finally {
    await app.stop()
  }
  // The control: the same example with Fastify's default logger does log it, so the search above can see a leak.
  const plain = await runReadmeExample(readmePorts[1] as number, (s) => s.replace("tesseraLoggerOptions('info')", 'true'))
  try {
    const token = await handOverTo(plain.url)
    await untilLogged(plain, token)
    assert.ok(plain.log().includes(token), 'Fastify\'s default request log writes the token')
  } finally {
    await plain.stop()
  }
})

test('no TOTP secret, code, recovery code or factor key reaches a log line (second factors)', async () => {
  const before = lines.length
  const secrets: string[] = [FACTOR_KEYS.split(':')[1] as string]
  const b = await signInThroughA(stack)
  const csrf = await confirmPassword(b, stack.idpUrl)
  const start = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf })
  const secret = shownSecret(start)
  const enrolment = formFields(start.body).enrolment as string
  secrets.push(secret, enrolment, codeAt(secret, 5))
  await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(secret, 5) })
  const done = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(secret) })
  const codes = shownCodes(done)
  assert.equal(codes.length, 10)
  secrets.push(...codes, codeAt(secret), codeAt(secret, 1), codeAt(secret, -1))
  const stored = await redis.client().hget(keys.factors('alice'), 'totp')
  secrets.push(stored as string)
  const c = new Browser()
  await postPassword(c, stack.idpUrl, stack.appAUrl, 'alice')
  secrets.push(c.cookies('127.0.0.1').get('tessera_2fa') as string)
  await postFactor(c, stack.idpUrl, { code: codeAt(secret, -1) })
  await postFactor(c, stack.idpUrl, { recovery: 'aaaaaa-bbbbbb-cccccc-dddddd' })
  await postFactor(c, stack.idpUrl, { code: codeAt(secret, 1) })
  const d = new Browser()
  await postPassword(d, stack.idpUrl, stack.appAUrl, 'alice')
  await postFactor(d, stack.idpUrl, { recovery: codes[0] as string })
  await redis.client().del(keys.factors('alice'))

  const mine = lines.slice(before)
  assert.ok(mine.some((l) => l.includes('second factor rejected')), 'second-factor failures were logged')
  assert.ok(mine.some((l) => l.includes('totp enrolled')))
  const real = secrets.filter((s) => s.length >= 6)
  for (const line of mine) {
    for (const s of real) {
      // A 6-digit code could sit inside a timestamp by chance: only a code standing alone counts.
      const found = /^\d+$/.test(s) ? new RegExp(`(?<!\\d)${s}(?!\\d)`).test(line) : line.includes(s) || line.includes(s.replace(/-/g, ''))
      assert.ok(!found, `a factor secret reached the log: ${line.slice(0, 200)}`)
    }
  }
})

test('no WebAuthn challenge, assertion, attestation or WebAuthn cookie reaches a log line (passkeys)', async () => {
  const before = lines.length
  const secrets: string[] = []
  const auth = new SoftAuthenticator(stack.idpUrl)
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'alice')
  const csrf = await confirmPassword(b, stack.idpUrl)
  const created = (await postOptions(b, `${stack.idpUrl}/security/passkeys/options`, csrf)).json<{ challenge: string; rp: { id?: string }; user: { id: string } }>()
  const attestation = auth.register(created)
  const att = attestation.response as Record<string, string>
  secrets.push(created.challenge, created.user.id, att.clientDataJSON as string, att.attestationObject as string)
  await b.post(`${stack.idpUrl}/security/passkeys`, { csrf, name: 'Key', response: JSON.stringify(attestation) })

  // A sign-in, then failures whose library messages would quote challenges: an answer to an older
  // challenge than the one kept, a replay, another origin.
  const c = new Browser()
  const fields = await openLogin(c, stack)
  const older = (await postOptions(c, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)).json<{ challenge: string }>()
  const newer = (await postOptions(c, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)).json<{ challenge: string }>()
  const stale = auth.assert(older)
  assert.equal((await c.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(stale) })).status, 401)
  const request = (await postOptions(c, `${stack.idpUrl}/login/passkey/options`, fields.csrf as string)).json<{ challenge: string }>()
  const good = auth.assert(request)
  assert.equal((await c.post(`${stack.idpUrl}/login/passkey`, { ...fields, response: JSON.stringify(good) })).status, 303)
  const phished = await passkeySignIn(new Browser(), stack, await openLogin(new Browser(), stack), auth, { origin: 'http://evil.example' }).catch(() => undefined)
  assert.ok(phished === undefined || phished.status >= 400)
  secrets.push(older.challenge, newer.challenge, request.challenge, c.cookies('127.0.0.1').get('tessera_wa') as string)
  for (const answer of [stale, good]) {
    const r = answer.response as Record<string, string>
    secrets.push(r.clientDataJSON as string, r.authenticatorData as string, r.signature as string)
  }
  await redis.client().del(keys.factors('alice'))

  const mine = lines.slice(before)
  assert.ok(mine.some((l) => l.includes('passkey registered')), 'the registration was logged')
  assert.ok(mine.some((l) => l.includes('TESSERA_ERR_PASSKEY')), 'passkey failures were logged')
  assert.ok(mine.some((l) => l.includes('challenge')), 'a failure names what failed')
  for (const line of mine) {
    for (const s of secrets.filter((x) => x.length >= 16)) assert.ok(!line.includes(s), `a WebAuthn value reached the log: ${line.slice(0, 200)}`)
  }
})
