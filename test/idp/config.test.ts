import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseEnv } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { loadConfig } from '../../src/idp/config.js'
import { DEMO_PASSWORD_HASHES, DEMO_SECRETS } from '../../src/idp/demo-secrets.js'
import { ConfigError } from '../../src/shared/errors.js'
import { newKey, writeUsersFile } from '../helpers/stack.js'
import { writeProductionUsersFile } from '../helpers/users.js'

const good = (): Record<string, string> => ({
  SYNC_KEYS: `${newKey('new')},${newKey('old')}`,
  SESSION_SECRET: randomBytes(32).toString('base64url'),
  USERS_FILE: writeUsersFile(),
  PUBLIC_URL: 'http://127.0.0.1:3000',
  KNOWN_REMOTE_HOSTS: 'http://App1.localhost:3001, https://shop.example.com:443',
})

test('a good environment loads with defaults and normalised origins', () => {
  const c = loadConfig(good())
  assert.deepEqual(c.knownRemoteHosts, ['http://app1.localhost:3001', 'https://shop.example.com'])
  assert.equal(c.keyring.current.id, 'new')
  assert.equal(c.keyring.byId.size, 2)
  assert.equal(c.redis.url, 'redis://127.0.0.1:6379')
  assert.equal(c.tokenTtlSeconds, 10)
  assert.equal(c.sessionTtlSeconds, 8 * 3600)
  assert.equal(c.sessionIdleSeconds, 3600)
  assert.equal(c.port, 3000)
  assert.equal(c.host, '127.0.0.1')
  assert.ok(Object.isFrozen(c))
})

test('an empty allow-list is valid and allows nothing', () => {
  const c = loadConfig({ ...good(), KNOWN_REMOTE_HOSTS: '' })
  assert.deepEqual(c.knownRemoteHosts, [])
})

/** A users file with this content, in a fresh temp dir. */
function writeUsers(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  writeFileSync(file, content)
  return file
}

const bad: [string, Record<string, string | undefined>, RegExp][] = [
  ['missing SYNC_KEYS', { SYNC_KEYS: undefined }, /SYNC_KEYS: is required/],
  ['a short key', { SYNC_KEYS: 'k1:abc' }, /SYNC_KEYS\[0\] \(id k1\): key must be 32 random bytes/],
  ['a key without id', { SYNC_KEYS: randomBytes(32).toString('base64url') }, /SYNC_KEYS\[0\]: must be id:key/],
  ['a repeated key id', { SYNC_KEYS: `${newKey('a')},${newKey('a')}` }, /SYNC_KEYS\[1\]: key id a appears twice/],
  // A bad key does not hide that its id is used again later.
  ['a repeated key id after a bad key', { SYNC_KEYS: `k1:short,${newKey('k2')},${newKey('k1')}` }, /SYNC_KEYS\[0\] \(id k1\): key must be .*SYNC_KEYS\[2\]: key id k1 appears twice/],
  // Positions count the entries as written, empty ones included.
  ['a bad origin after an empty entry', { KNOWN_REMOTE_HOSTS: 'https://ok.example.com,,ftp://x.example.com' }, /KNOWN_REMOTE_HOSTS\[2\]: "ftp:\/\/x.example.com"/],
  ['a short session secret', { SESSION_SECRET: 'short' }, /SESSION_SECRET: must NOT have fewer than 32 characters/],
  ['an origin with a path', { KNOWN_REMOTE_HOSTS: 'https://a.example.com/app' }, /KNOWN_REMOTE_HOSTS\[0\]: .* must be an origin/],
  ['not a URL', { KNOWN_REMOTE_HOSTS: 'https://ok.example.com,app.example.com' }, /KNOWN_REMOTE_HOSTS\[1\]: "app.example.com" is not a URL/],
  ['a non-http scheme', { KNOWN_REMOTE_HOSTS: 'ftp://a.example.com' }, /KNOWN_REMOTE_HOSTS\[0\]/],
  ['a TTL above 120', { TOKEN_TTL_SECONDS: '121' }, /TOKEN_TTL_SECONDS: must be <= 120/],
  ['a port that is not a number', { PORT: 'abc' }, /PORT: must be integer/],
  // Ajv's coercion reads numbers as Number() does: each of these would have started on another setting.
  ['a port in exponent form', { PORT: '1e3' }, /PORT: must be a whole number in decimal digits, got "1e3"/],
  ['a port in hex', { PORT: '0x0F6E' }, /PORT: must be a whole number in decimal digits/],
  ['a port with a space before it', { PORT: ' 3950' }, /PORT: must be a whole number in decimal digits/],
  ['a token TTL in hex', { TOKEN_TTL_SECONDS: '0x10' }, /TOKEN_TTL_SECONDS: must be a whole number in decimal digits/],
  ['idle longer than absolute', { SESSION_IDLE_SECONDS: '7200', SESSION_TTL_SECONDS: '3600' }, /SESSION_IDLE_SECONDS: must not exceed/],
  ['a missing users file', { USERS_FILE: '/nonexistent/users.yml' }, /USERS_FILE: cannot read \/nonexistent\/users.yml \(ENOENT\)/],
  ['a bad log level', { LOG_LEVEL: 'loud' }, /LOG_LEVEL: must be equal to one of the allowed values/],
  ['TRUST_PROXY that is not an address', { TRUST_PROXY: 'yes please' }, /TRUST_PROXY: must be true, false, or comma-separated proxy addresses/],
  ['TRUST_PROXY with a bad CIDR', { TRUST_PROXY: '10.0.0.0/33' }, /TRUST_PROXY: must be true, false, or comma-separated proxy addresses/],
  // Fastify 5.12 trusts no hop for a number: every client would share the proxy's address.
  ['TRUST_PROXY as a hop count', { TRUST_PROXY: '1' }, /TRUST_PROXY: a hop count \("1"\) is not supported; give the proxy's addresses/],
  ['weak argon2 costs in production', { NODE_ENV: 'production', KNOWN_REMOTE_HOSTS: 'https://a.example.com', PUBLIC_URL: 'https://sso.example.com' }, /USERS_FILE \(.*\): users.alice.password: argon2id costs below OWASP's minimum/],
  // ioredis reads the path as the database with parseInt: /abc sent SELECT NaN and crashed the IdP.
  ['a Redis database that is not a number', { REDIS_URL: 'redis://127.0.0.1:6379/abc' }, /REDIS_URL: the path is the database number and must be digits only/],
  ['a Redis database with trailing letters', { REDIS_URL: 'redis://127.0.0.1:6379/1abc' }, /REDIS_URL: the path is the database number/],
  ['a negative Redis database', { REDIS_URL: 'redis://127.0.0.1:6379/-1' }, /REDIS_URL: the path is the database number/],
  ['a Redis database of six digits', { REDIS_URL: 'redis://127.0.0.1:6379/123456' }, /REDIS_URL: the path is the database number/],
  // ...and every query parameter as a client option: ?db=abc crashed the same way, ?keyPrefix= moves every key.
  ['a Redis URL with a query', { REDIS_URL: 'redis://127.0.0.1:6379/0?db=abc' }, /REDIS_URL: must have no query/],
  ['a Redis URL with a keyPrefix query', { REDIS_URL: 'redis://127.0.0.1:6379?keyPrefix=x' }, /REDIS_URL: must have no query/],
  ['a Redis URL with a fragment', { REDIS_URL: 'redis://127.0.0.1:6379#x' }, /REDIS_URL: must have no fragment/],
  ['a Redis password with a bad %-escape', { REDIS_URL: 'redis://:%zz@127.0.0.1:6379' }, /REDIS_URL: the user name or password has a bad %-escape/],
  // deploy/kubernetes/secret.example.yaml's placeholders, refused in every environment.
  ['the placeholder Redis password', { REDIS_PASSWORD: 'replace-me' }, /REDIS_PASSWORD: is a placeholder/],
  ['docs/deploy.md\'s … as the Redis password', { REDIS_PASSWORD: '…' }, /REDIS_PASSWORD: is a placeholder/],
  ['a placeholder sentinel password', { REDIS_SENTINEL_PASSWORD: 'Replace-Me' }, /REDIS_SENTINEL_PASSWORD: is a placeholder/],
  ['a placeholder session secret long enough to pass its length check', { SESSION_SECRET: 'replace-me-with-openssl-rand-base64-48' }, /SESSION_SECRET: is a placeholder/],
  ['a users file with no users', { USERS_FILE: 'deploy-placeholder' }, /USERS_FILE: .*users\.yml lists no users/],
  ['http in production', { NODE_ENV: 'production', KNOWN_REMOTE_HOSTS: 'http://app.example.com' }, /KNOWN_REMOTE_HOSTS\[0\]: "http:\/\/app.example.com" uses http: in production/],
]

for (const [name, change, expected] of bad) {
  test(`start-up refuses ${name}, naming the variable`, () => {
    const env: Record<string, string | undefined> = { ...good(), ...change }
    if (env.USERS_FILE === 'deploy-placeholder') env.USERS_FILE = writeUsers('users: {}\n')
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k]
    assert.throws(() => loadConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError)
      assert.match(err.message, expected)
      return true
    })
  })
}

test('every problem is reported at once', () => {
  assert.throws(() => loadConfig({ ...good(), SYNC_KEYS: 'x', PORT: 'abc', KNOWN_REMOTE_HOSTS: 'nope' }), (err: ConfigError) => {
    assert.equal(err.problems.length, 3)
    return true
  })
})

test('a Redis URL may name a database in digits, or none', () => {
  for (const url of ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379/', 'redis://127.0.0.1:6379/0', 'rediss://:p%23w@redis.example.com:6380/15']) {
    assert.equal(loadConfig({ ...good(), REDIS_URL: url }).redis.url, url)
  }
})

test('a type error hides no other problem: every variable\'s own checks run in the same pass', () => {
  // Before: only "PORT: must be integer"; the other four came after PORT was fixed.
  const change = { PORT: 'x', TRUST_PROXY: '1', SESSION_IDLE_SECONDS: '99999', SESSION_TTL_SECONDS: '3600', SECOND_FACTOR: 'off', SECOND_FACTOR_GROUPS: 'admins' }
  assert.throws(() => loadConfig({ ...good(), ...change }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.deepEqual(err.problems.map((p) => p.slice(0, p.indexOf(':'))),
      ['PORT', 'TRUST_PROXY', 'SESSION_IDLE_SECONDS', 'SECOND_FACTOR_GROUPS', 'FACTOR_KEYS'])
    return true
  })
})

test('production refuses the demo secrets even when another variable has a type error', () => {
  const env = { ...good(), NODE_ENV: 'production', PUBLIC_URL: 'https://sso.example.com', KNOWN_REMOTE_HOSTS: '',
    SESSION_SECRET: 'demo-only-session-secret-change-me-0123456789', LOG_LEVEL: 'loud' }
  assert.throws(() => loadConfig(env), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.ok(err.problems.some((p) => p.startsWith('LOG_LEVEL: must be equal to one of the allowed values')), err.message)
    assert.ok(err.problems.some((p) => p.startsWith('SESSION_SECRET: is the published demo value')), err.message)
    return true
  })
})

test('a check that reads an invalid variable is skipped, not run on a guess', () => {
  // SESSION_TTL_SECONDS is refused, so "idle must not exceed absolute" has nothing to compare with;
  // SECOND_FACTOR is refused, and SECOND_FACTOR_GROUPS alone still needs FACTOR_KEYS.
  const change = { SESSION_TTL_SECONDS: '1e3', SESSION_IDLE_SECONDS: '5000', SECOND_FACTOR: 'bogus', SECOND_FACTOR_GROUPS: 'admins' }
  assert.throws(() => loadConfig({ ...good(), ...change }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.deepEqual(err.problems.map((p) => p.slice(0, p.indexOf(':'))), ['SESSION_TTL_SECONDS', 'SECOND_FACTOR', 'FACTOR_KEYS'])
    return true
  })
})

test('TRUST_PROXY takes false, true or proxy addresses', () => {
  assert.equal(loadConfig(good()).trustProxy, false)
  assert.equal(loadConfig({ ...good(), TRUST_PROXY: 'true' }).trustProxy, true)
  assert.deepEqual(loadConfig({ ...good(), TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).trustProxy, ['10.0.0.0/8', '127.0.0.1'])
  assert.deepEqual(loadConfig({ ...good(), TRUST_PROXY: 'loopback,fd00::/8' }).trustProxy, ['loopback', 'fd00::/8'])
})

test('production allows http only for loopback and *.localhost', () => {
  const c = loadConfig({ ...good(), USERS_FILE: writeProductionUsersFile(), NODE_ENV: 'production', KNOWN_REMOTE_HOSTS: 'http://app.localhost:3001,http://127.0.0.2:8080' })
  assert.equal(c.knownRemoteHosts.length, 2)
})

const production = (): Record<string, string> => ({ ...good(), NODE_ENV: 'production', PUBLIC_URL: 'https://sso.example.com', KNOWN_REMOTE_HOSTS: 'https://app.example.com', USERS_FILE: writeProductionUsersFile() })

test('production accepts a users file with no published hash', () => {
  assert.equal(loadConfig(production()).users.size, 1)
})

test('production refuses the demo users file the image ships, naming USERS_FILE, the file and the user', () => {
  // Before: alice / tessera-demo (group admins) signed in to a production IdP.
  assert.throws(() => loadConfig({ ...production(), USERS_FILE: 'examples/users.yml' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.deepEqual(err.problems, ['USERS_FILE (examples/users.yml): users.alice.password: is a published demo hash (examples/users.yml), whose password anyone can read; set the user\'s own with npx tessera hash-password'])
    return true
  })
  // Outside production the demo (docker-compose.yml, .env.example) still runs on it.
  assert.equal(loadConfig({ ...good(), USERS_FILE: 'examples/users.yml' }).users.size, 1)
})

test('production refuses a published hash copied under another name, however its digest is spelt', () => {
  const [hash] = DEMO_PASSWORD_HASHES as [string]
  // base64's last character carries spare bits: M and N decode to the same digest.
  const respelt = hash.replace(/M$/, 'N')
  assert.notEqual(respelt, hash)
  const file = writeUsers(`users:\n  carol:\n    password: "${hash}"\n  dave:\n    password: "${respelt}"\n`)
  assert.throws(() => loadConfig({ ...production(), USERS_FILE: file }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.deepEqual(err.problems.map((p) => p.slice(0, p.indexOf('.password'))), [`USERS_FILE (${file}): users.carol`, `USERS_FILE (${file}): users.dave`])
    return true
  })
})

test('every hash examples/users.yml publishes is in DEMO_PASSWORD_HASHES', () => {
  // Fails when the demo file's hash changes and the list that production refuses does not.
  const { users } = parseYaml(readFileSync('examples/users.yml', 'utf8')) as { users: Record<string, { password: string }> }
  const hashes = Object.values(users).map((u) => u.password)
  assert.ok(hashes.length > 0)
  for (const h of hashes) assert.ok(DEMO_PASSWORD_HASHES.includes(h), `${h} is in src/idp/demo-secrets.ts`)
})

test('every secret .env.example and docker-compose.yml publish for the IdP is in DEMO_SECRETS', () => {
  const dotenv = parseEnv(readFileSync('.env.example', 'utf8'))
  const compose = parseYaml(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: { idp: { environment: Record<string, string> } } }
  for (const env of [dotenv, compose.services.idp.environment]) {
    assert.ok(DEMO_SECRETS.includes(env.SESSION_SECRET ?? ''), 'SESSION_SECRET')
    for (const name of ['SYNC_KEYS', 'FACTOR_KEYS']) {
      for (const pair of (env[name] ?? '').split(',')) assert.ok(DEMO_SECRETS.includes(pair.slice(pair.indexOf(':') + 1)), name)
    }
  }
})

test('the server exits non-zero with one line naming the variable, and no secret', () => {
  const secret = 'do-not-print-this-secret-value-0123456789'
  const res = spawnSync(process.execPath, ['dist/src/server.js'], {
    env: { PATH: process.env.PATH, ...good(), SESSION_SECRET: secret, SYNC_KEYS: 'k1:notakey' },
    encoding: 'utf8',
    timeout: 10_000,
  })
  assert.equal(res.status, 1)
  const lines = res.stderr.trim().split('\n')
  assert.equal(lines.length, 1)
  assert.match(lines[0] as string, /^tessera: Invalid configuration: SYNC_KEYS\[0\] \(id k1\): key must be/)
  assert.ok(!res.stderr.includes(secret) && !res.stderr.includes('notakey'))
  assert.equal(res.stdout, '')
})

test('a problem line never echoes a password written into a URL or a host list', () => {
  const secret = 'S3cretPassw0rd'
  for (const [name, value] of [['KNOWN_REMOTE_HOSTS', `http://u:${secret}@127.0.0.2:3001`], ['PUBLIC_URL', `https://admin:${secret}@sso.example.com`],
    ['KNOWN_REMOTE_HOSTS', `http://u:${secret}@bad host`], ['REDIS_SENTINELS', `u:${secret}@10.0.0.1:26379`]] as const) {
    assert.throws(() => loadConfig({ ...good(), [name]: value }), (err: unknown) => {
      const message = (err as Error).message
      assert.match(message, new RegExp(`${name}(\\[0\\])?: `), message)
      assert.doesNotMatch(message, new RegExp(secret), `${name} echoed its password: ${message}`)
      return true
    })
  }
})
