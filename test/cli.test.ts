import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { randomBytes } from 'node:crypto'
import { verify } from '@node-rs/argon2'
import { parseSyncKeys, type Keyring } from '../src/shared/keyring.js'
import { formatAppKeys, parseAppKeys } from '../src/shared/app-keys.js'
import { Browser } from './helpers/browser.js'
import { runCli, type CliResult } from './helpers/cli.js'
import { repoRoot } from './helpers/callbacks.js'
import { type TestRedis } from './helpers/redis-server.js'
import { formFields, newKey, PASSWORD, writeUsersFile, useStack, type Stack } from './helpers/stack.js'

const MAIN = resolve(new URL('../src/cli/main.js', import.meta.url).pathname)
// Run in an empty folder so a developer's .env never leaks into these tests.
const cwd = mkdtempSync(join(tmpdir(), 'tessera-cli-'))

function cli(args: string[], opts: { input?: string; env?: Record<string, string>; cwd?: string } = {}): Promise<CliResult> {
  return runCli(args, { ...opts, cwd: opts.cwd ?? cwd })
}

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s })

const goodEnv = (): Record<string, string> => ({
  REDIS_URL: redis.url, SYNC_KEYS: newKey('k1'), SESSION_SECRET: randomBytes(32).toString('base64url'),
  USERS_FILE: writeUsersFile(), PUBLIC_URL: 'http://127.0.0.1:3000', KNOWN_REMOTE_HOSTS: 'https://shop.example.com',
})

test('hash-password prints an argon2id PHC string that verifies the password from standard input', async () => {
  const res = await cli(['hash-password'], { input: 's3cret pass\n' })
  assert.equal(res.status, 0)
  const phc = res.stdout.trim()
  assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  assert.ok(await verify(phc, 's3cret pass'))
  assert.ok(!(await verify(phc, 's3cret pass\n')), 'the trailing newline is not part of the password')
})

/**
 * Runs `tessera hash-password` on a real pseudo-terminal (util-linux `script`), typing each answer
 * once its prompt shows. Resolves to the exit status and everything the terminal displayed.
 */
function hashInTerminal(answers: readonly string[]): Promise<{ status: number | null; screen: string }> {
  return new Promise((done, fail) => {
    const child = spawn('script', ['-qec', `'${process.execPath}' '${MAIN}' hash-password`, '/dev/null'], {
      cwd, env: { PATH: process.env.PATH ?? '', SHELL: '/bin/sh', TERM: 'dumb' },
    })
    let screen = ''
    let typed = 0
    const guard = setTimeout(() => { child.kill(); fail(new Error(`no exit; the terminal showed: ${JSON.stringify(screen)}`)) }, 30_000)
    child.stdout.on('data', (d: Buffer) => {
      screen += d.toString()
      const prompts = screen.match(/Password: |Again: /g)?.length ?? 0
      if (prompts > typed && typed < answers.length) child.stdin.write(`${answers[typed++] as string}\r`)
    })
    child.on('error', (e) => { clearTimeout(guard); fail(new Error(`util-linux script(1) is needed for this test: ${e.message}`)) })
    child.on('close', (status) => { clearTimeout(guard); child.stdin.destroy(); done({ status, screen }) })
  })
}

test('hash-password in a terminal asks twice without echo and prints the hash', async () => {
  const secret = 'typed in a terminal'
  const res = await hashInTerminal([secret, secret])
  assert.equal(res.status, 0, res.screen)
  assert.match(res.screen, /Password: [\s\S]*Again: /)
  assert.ok(!res.screen.includes('typed'), `the password is not echoed: ${JSON.stringify(res.screen)}`)
  const phc = /\$argon2id\$\S+/.exec(res.screen)?.[0] as string
  assert.ok(await verify(phc, secret))
})

test('hash-password in a terminal refuses two different entries, and a short one, printing no hash', async () => {
  const mismatch = await hashInTerminal(['first passphrase', 'second passphrase'])
  assert.equal(mismatch.status, 1, mismatch.screen)
  assert.match(mismatch.screen, /do not match/)
  assert.doesNotMatch(mismatch.screen, /argon2id/)
  const short = await hashInTerminal(['short12', 'short12'])
  assert.equal(short.status, 1, short.screen)
  assert.match(short.screen, /8 to 1024 characters/)
})

test('the CLI runs as README calls it after a plain build: the bin path executes, and npx tessera', async () => {
  const root = repoRoot()
  const bin = join(root, (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { tessera: string } }).bin.tessera)
  assert.notEqual(statSync(bin).mode & 0o111, 0, `${bin} is executable`)
  for (const [cmd, args] of [[bin, ['gen-key']], ['npx', ['--offline', 'tessera', 'gen-key']]] as const) {
    const res = await new Promise<CliResult>((done) => {
      // npx installs this directory into its cache on first use and would run its `prepare` script,
      // which rebuilds dist/ (rm -rf first) under the tests running beside this one.
      const child = spawn(cmd, args, { cwd: root, env: { ...process.env, npm_config_ignore_scripts: 'true' } })
      let stdout = ''
      let stderr = ''
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      child.on('close', (status) => done({ status, stdout, stderr }))
    })
    assert.equal(res.status, 0, `${cmd} ${args.join(' ')}: ${res.stderr}`)
    assert.match(res.stdout, /^[A-Za-z0-9_-]+:[A-Za-z0-9_-]{43}\n$/)
  }
})

test('hash-password refuses a password under 8 characters with exit 1', async () => {
  for (const input of ['', 'short12\n']) {
    const res = await cli(['hash-password'], { input })
    assert.equal(res.status, 1)
    assert.match(res.stderr, /8 to 1024 characters/)
  }
  // Characters, not UTF-16 units: seven emoji are seven characters (fourteen units), eight are enough.
  const seven = await cli(['hash-password'], { input: '🔑'.repeat(7) })
  assert.equal(seven.status, 1, 'seven characters are too few')
  const eight = await cli(['hash-password'], { input: '🔑'.repeat(8) })
  assert.equal(eight.status, 0, eight.stderr)
  assert.ok(await verify(eight.stdout.trim(), '🔑'.repeat(8)))
})

test('hash-password refuses a password given as an argument (exit 2), printing no hash', async () => {
  const res = await cli(['hash-password', 'Correct-Horse-42'], { input: 'Correct-Horse-42' })
  assert.equal(res.status, 2)
  assert.equal(res.stdout, '')
  assert.match(res.stderr, /takes no argument/)
  assert.doesNotMatch(res.stderr, /Correct-Horse-42/, 'the password is not echoed')
})

test('gen-key prints an id:key pair that SYNC_KEYS accepts', async () => {
  const res = await cli(['gen-key'])
  assert.equal(res.status, 0)
  const problems: string[] = []
  assert.ok(parseSyncKeys(res.stdout.trim(), 'SYNC_KEYS', problems))
  assert.deepEqual(problems, [])
})

test('gen-key takes no argument: one is a usage error (exit 2)', async () => {
  const res = await cli(['gen-key', 'extra'])
  assert.equal(res.status, 2)
  assert.match(res.stderr, /Usage: tessera gen-key/)
  assert.equal(res.stdout, '')
})

test('output its reader stopped reading ends the command quietly, with its own exit code', async () => {
  const child = spawn(process.execPath, [MAIN, 'gen-key'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.destroy() // `tessera gen-key | true`: the reader is gone before the first write
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const status = await new Promise<number | null>((done) => child.on('close', done))
  assert.equal(stderr, '', 'no stack trace')
  assert.equal(status, 0)
})

test('every command has --help, exit 0; an unknown command exits 2 with the usage', async () => {
  for (const command of ['hash-password', 'gen-key', 'app-key', 'check-config', 'check-callback', 'sessions']) {
    const res = await cli([command, '--help'])
    assert.equal(res.status, 0, command)
    assert.match(res.stdout, /Usage: /, command)
    assert.match(res.stdout, /Exit codes/, command)
  }
  const res = await cli(['frobnicate'])
  assert.equal(res.status, 2)
  assert.match(res.stderr, /Usage: tessera/)
})

test('check-config prints what it found, without secrets, and exits 0 when Redis answers', async () => {
  const env = goodEnv()
  const res = await cli(['check-config'], { env })
  assert.equal(res.status, 0, res.stdout + res.stderr)
  assert.match(res.stdout, /Configuration is valid/)
  assert.match(res.stdout, /https:\/\/shop\.example\.com/)
  assert.match(res.stdout, /answers/)
  assert.ok(!res.stdout.includes(env.SESSION_SECRET as string))
  assert.ok(!res.stdout.includes((env.SYNC_KEYS as string).split(':')[1] as string))
})

test('check-config lists every problem at once and exits 1', async () => {
  const res = await cli(['check-config'], { env: { ...goodEnv(), SYNC_KEYS: 'bad', PORT: 'x', KNOWN_REMOTE_HOSTS: 'ftp://a' } })
  assert.equal(res.status, 1)
  assert.equal(res.stderr, '', 'the report is on stdout (docs/errors.md)')
  assert.match(res.stdout, /3 problems/)
  assert.match(res.stdout, /SYNC_KEYS\[0\]/)
  assert.match(res.stdout, /PORT/)
  assert.match(res.stdout, /KNOWN_REMOTE_HOSTS\[0\]/)
})

test('check-config lists a type error and the other variables\' problems in one run', async () => {
  const res = await cli(['check-config'], { env: { ...goodEnv(), PORT: 'x', TRUST_PROXY: '1', SESSION_IDLE_SECONDS: '99999', SESSION_TTL_SECONDS: '3600', SECOND_FACTOR: 'off', SECOND_FACTOR_GROUPS: 'admins' } })
  assert.equal(res.status, 1)
  assert.match(res.stdout, /5 problems/)
  for (const name of ['PORT', 'TRUST_PROXY', 'SESSION_IDLE_SECONDS', 'SECOND_FACTOR_GROUPS', 'FACTOR_KEYS']) assert.match(res.stdout, new RegExp(`\\n {2}- ${name}: `))
})

test('check-config refuses a Redis database that is not a number, with no stack trace', async () => {
  // Before: "Configuration is valid", then ioredis's SELECT NaN rejected and crashed the command.
  const res = await cli(['check-config'], { env: { ...goodEnv(), REDIS_URL: `${redis.url}/abc` } })
  assert.equal(res.status, 1)
  assert.equal(res.stderr, '')
  assert.match(res.stdout, /Configuration is invalid \(1 problem\):\n {2}- REDIS_URL: the path is the database number/)
})

test('check-config exits 3 when the configuration is valid but Redis does not answer', async () => {
  const res = await cli(['check-config'], { env: { ...goodEnv(), REDIS_URL: 'redis://:hunter2hunter2@127.0.0.1:1' } })
  assert.equal(res.status, 3)
  assert.match(res.stdout, /does NOT answer/)
  assert.ok(!res.stdout.includes('hunter2hunter2'), 'the Redis password is not printed')
})

test('check-config reads .env in the working directory, real variables winning', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-env-'))
  const env = goodEnv()
  writeFileSync(join(dir, '.env'), Object.entries({ ...env, KNOWN_REMOTE_HOSTS: 'https://from-dotenv.example' }).map(([k, v]) => `${k}=${v}`).join('\n'))
  const fromFile = await cli(['check-config'], { cwd: dir })
  assert.match(fromFile.stdout, /from-dotenv\.example/)
  const overridden = await cli(['check-config'], { cwd: dir, env: { KNOWN_REMOTE_HOSTS: 'https://from-env.example' } })
  assert.match(overridden.stdout, /from-env\.example/)
})

test('check-callback says allowed, or refused and why', async () => {
  const env = { KNOWN_REMOTE_HOSTS: 'https://shop.example.com' }
  const ok = await cli(['check-callback', 'https://SHOP.example.com:443/cart?x=1'], { env })
  assert.equal(ok.status, 0)
  assert.match(ok.stdout, /^allowed: /)
  const encoded = await cli(['check-callback', Buffer.from('https://shop.example.com/').toString('base64url')], { env })
  assert.equal(encoded.status, 0)
  for (const [url, reason] of [
    ['http://shop.example.com/', /origin http:\/\/shop\.example\.com is not in KNOWN_REMOTE_HOSTS/],
    ['https://shop.example.com@evil.com/', /user-info/],
    ['https://evil.com\\@shop.example.com/', /backslash/],
    // Neither a URL with a scheme nor base64: checked as the URL it was meant to be.
    ['//shop.example.com/', /not an absolute http\(s\) URL/],
  ] as const) {
    const res = await cli(['check-callback', url], { env })
    assert.equal(res.status, 1, url)
    assert.match(res.stdout, reason, url)
  }
  assert.equal((await cli(['check-callback'], { env })).status, 2)
  // Standard base64 with a '+': a query string reads it as a space, so the IdP refuses it; so does check-callback.
  const plus = Buffer.from('https://shop.example.com/~~~').toString('base64')
  assert.ok(plus.includes('+'))
  const refused = await cli(['check-callback', plus], { env })
  assert.equal(refused.status, 1)
  assert.match(refused.stdout, /reads as a space/)
  const appAPlus = Buffer.from(`${stack.appAUrl}/~~~`).toString('base64')
  assert.ok(appAPlus.includes('+'), appAPlus)
  const notAllowed = /not on this sign-in service's list of allowed sites/
  const atIdp = await new Browser().get(`${stack.idpUrl}/login?callback=${appAPlus}&state=${'s'.repeat(22)}`)
  assert.match(atIdp.body.replace(/&#39;/g, "'"), notAllowed, 'the IdP refuses it too')
  const escaped = await new Browser().get(`${stack.idpUrl}/login?callback=${appAPlus.replace(/\+/g, '%2B')}&state=${'s'.repeat(22)}`)
  assert.equal(escaped.status, 200)
  assert.doesNotMatch(escaped.body.replace(/&#39;/g, "'"), notAllowed, 'percent-encoded, it passes')
})

test('sessions list shows a user\'s live sessions and revoke ends them in every app', async () => {
  const env = { REDIS_URL: redis.url }
  const browsers: Browser[] = []
  for (let i = 0; i < 2; i++) {
    const b = new Browser()
    const hops = await b.navigate(`${stack.appAUrl}/private`)
    const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
    await b.navigate(posted.location() as string)
    browsers.push(b)
  }
  const list = await cli(['sessions', 'list', 'alice'], { env })
  assert.equal(list.status, 0, list.stderr)
  const rows = list.stdout.trim().split('\n').slice(1)
  assert.ok(rows.length >= 2, list.stdout)
  assert.match(rows.at(-1) ?? '', new RegExp(`Node\\.js \\(${stack.appAUrl.replaceAll('.', '\\.')}\\)$`), 'the device and the apps that hold a handle')
  for (const b of browsers) {
    const sid = (b.cookies('127.0.0.1').get('tessera_idp') as string).split('.')[0] as string
    assert.ok(!list.stdout.includes(sid), 'the session id itself is never printed')
  }
  const revoke = await cli(['sessions', 'revoke', 'alice'], { env })
  assert.equal(revoke.status, 0)
  assert.match(revoke.stdout, /revoked \d+ sessions of alice/)
  for (const b of browsers) {
    assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401)
    assert.match((await b.get(`${stack.idpUrl}/`)).body, /You are not signed in/)
  }
  const none = await cli(['sessions', 'list', 'alice'], { env })
  assert.equal(none.status, 1)
  assert.equal((await cli(['sessions', 'list', 'alice'], { env: { REDIS_URL: 'redis://127.0.0.1:1' } })).status, 3)
})

test('sessions revoke waits for REDIS_WAIT_REPLICAS, as a logout does: with no replica it exits 3 saying so; a bad value is a usage error', async () => {
  const b = new Browser()
  const hops = await b.navigate(`${stack.appAUrl}/private`)
  const posted = await b.post(`${stack.idpUrl}/login`, { ...formFields(hops.at(-1)?.body ?? ''), username: 'alice', password: PASSWORD })
  await b.navigate(posted.location() as string)
  const revoke = await cli(['sessions', 'revoke', 'alice'], { env: { REDIS_URL: redis.url, REDIS_WAIT_REPLICAS: '1' } })
  assert.equal(revoke.status, 3)
  assert.match(revoke.stderr, /not acknowledged by REDIS_WAIT_REPLICAS=1 replicas/)
  // The session is ended on the primary all the same.
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401)
  const bad = await cli(['sessions', 'revoke', 'alice'], { env: { REDIS_URL: redis.url, REDIS_WAIT_REPLICAS: 'two' } })
  assert.equal(bad.status, 2)
  assert.match(bad.stderr, /REDIS_WAIT_REPLICAS: must be an integer from 0 to 16/)
})

test('app-key prints the appKeys for an allowed origin, and refuses any other', async () => {
  const env = goodEnv()
  const res = await cli(['app-key', 'https://Shop.example.com:443'], { env })
  assert.equal(res.status, 0, res.stderr)
  const keyring = parseSyncKeys(env.SYNC_KEYS as string, 'SYNC_KEYS', []) as Keyring
  assert.equal(res.stdout.trim(), formatAppKeys(keyring, 'https://shop.example.com'))
  assert.ok(parseAppKeys(res.stdout.trim(), 'appKeys', []))
  assert.ok(!res.stdout.includes((env.SYNC_KEYS as string).split(':')[1] as string), 'the IdP key itself is never printed')
  const other = await cli(['app-key', 'https://evil.example.com'], { env })
  assert.equal(other.status, 1)
  assert.match(other.stderr, /not in KNOWN_REMOTE_HOSTS/)
  assert.equal(other.stdout, '')
})

test('admin commands name the Redis they could not use and why, never fall back to database 0, and note a user name the users file lacks', async () => {
  // A database the server does not have: ioredis would go on in database 0 after the failed SELECT.
  const otherDb = await cli(['sessions', 'revoke', 'alice'], { env: { REDIS_URL: `${redis.url}/99` } })
  assert.equal(otherDb.status, 3)
  assert.match(otherDb.stderr, /^tessera sessions: Redis at redis:\/\/[^ ]+\/99 refused: ERR DB index is out of range\n$/)
  assert.equal(otherDb.stdout, '', 'nothing was revoked anywhere')
  const noted = await cli(['sessions', 'list', 'Alice'], { env: { REDIS_URL: redis.url, USERS_FILE: writeUsersFile() } })
  assert.match(noted.stderr, /tessera sessions: note: "Alice" is not a user in USERS_FILE \([^)]+\); names are case-sensitive/)
  const known = await cli(['sessions', 'list', 'alice'], { env: { REDIS_URL: redis.url, USERS_FILE: writeUsersFile() } })
  assert.doesNotMatch(known.stderr, /note:/)
})

test('a .env that cannot be read is one line naming it, exit 1, for every command that reads it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-cli-env-'))
  mkdirSync(join(dir, '.env'))
  for (const args of [['app-key', 'https://shop.example.com'], ['sessions', 'list', 'alice'], ['factors', 'list', 'alice'], ['check-callback', 'https://shop.example.com/']]) {
    const res = await cli(args, { cwd: dir })
    assert.equal(res.status, 1, `${args.join(' ')}: ${res.stderr}`)
    assert.equal(res.stderr, `tessera ${args[0] as string}: .env: cannot be read (EISDIR)\n`)
  }
})

test('check-config refuses a Redis database the server lacks, and REDIS_WAIT_REPLICAS more than the replicas connected', async () => {
  const noDb = await cli(['check-config'], { env: { ...goodEnv(), REDIS_URL: `${redis.url}/99` } })
  assert.equal(noDb.status, 3, noDb.stdout)
  assert.match(noDb.stdout, /Redis +redis:\/\/[^ ]+\/99: refused: ERR DB index is out of range/)
  const waiting = await cli(['check-config'], { env: { ...goodEnv(), REDIS_WAIT_REPLICAS: '1' } })
  assert.equal(waiting.status, 1, waiting.stdout)
  assert.match(waiting.stdout, /REDIS_WAIT_REPLICAS +1, but 0 replicas are connected: every sign-in and logout would answer 503/)
  assert.equal((await cli(['check-config'], { env: goodEnv() })).status, 0)
})
