import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { loadConfig, type IdpConfig } from '../../src/idp/config.js'
import { ConfigError } from '../../src/shared/errors.js'
import { Browser } from '../helpers/browser.js'
import { startRedis } from '../helpers/redis-server.js'
import { formFields, newKey, PASSWORD, PASSWORD_HASH, startStack } from '../helpers/stack.js'

function usersFile(yaml: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'tessera-users-')), 'users.yml')
  writeFileSync(file, yaml)
  return file
}

const env = (file: string): Record<string, string> => ({
  SYNC_KEYS: newKey('k1'), SESSION_SECRET: randomBytes(32).toString('base64url'), USERS_FILE: file,
  PUBLIC_URL: 'http://127.0.0.1:3000', KNOWN_REMOTE_HOSTS: 'https://shop.example.com',
})

/** A file with alice (enabled) and bob, whose entry ends with `bobTail` lines. */
const withBob = (bobTail: string, head = ''): string =>
  `${head}users:\n  alice:\n    password: "${PASSWORD_HASH}"\n  bob:\n    password: "${PASSWORD_HASH}"\n${bobTail}`

function load(yaml: string): IdpConfig {
  return loadConfig(env(usersFile(yaml)))
}

function refused(yaml: string, expected: RegExp): void {
  const file = usersFile(yaml)
  assert.throws(() => loadConfig(env(file)), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.match(err.message, expected)
    assert.ok(err.message.includes(file), `names the file: ${err.message}`)
    return true
  }, yaml)
}

async function signsIn(config: IdpConfig, username: string): Promise<boolean> {
  return (await config.users.verify(username, PASSWORD)) !== undefined
}

// What Authelia's file backend (go-yaml decoding into a Go bool) reads as true or false: YAML 1.2's
// true/false in three spellings, and YAML 1.1's y/yes/on, n/no/off, quoted or not.
const TRUE = ['true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'y', 'Y', 'on', 'On', 'ON', '"yes"', "'on'", '"Y"']
const FALSE = ['false', 'False', 'FALSE', 'no', 'No', 'NO', 'n', 'N', 'off', 'Off', 'OFF', '"no"']

test('disabled: every spelling of true that Authelia reads as true disables the user', async () => {
  for (const v of TRUE) {
    const c = load(withBob(`    disabled: ${v}\n`))
    assert.equal(await signsIn(c, 'bob'), false, `disabled: ${v}`)
    assert.equal(await signsIn(c, 'alice'), true)
  }
})

test('disabled: every spelling of false, or no disabled key, leaves the user enabled', async () => {
  for (const v of FALSE) assert.equal(await signsIn(load(withBob(`    disabled: ${v}\n`)), 'bob'), true, `disabled: ${v}`)
  assert.equal(await signsIn(load(withBob('')), 'bob'), true)
})

test('disabled: anything else refuses the file, naming the file, the user and the field', () => {
  for (const v of ['"true"', "'True'", '"false"', '1', '0', '', '~', 'null', '""', 'disabled', '[true]', '{yes: 1}', '2026-01-01']) {
    refused(withBob(`    disabled: ${v}\n`), /users\.bob\.disabled: must be true or false/)
  }
})

test('an unknown key in a user entry refuses the file (a typo like "disable" must not pass)', () => {
  refused(withBob('    disable: true\n'), /users\.bob: unknown key "disable"/)
  refused(withBob('    Disabled: true\n'), /users\.bob: unknown key "Disabled"/)
  refused(withBob('    groups: [a]\n    group: [b]\n'), /users\.bob: unknown key "group"/)
})

test('every problem of one user is reported at once, not the first only', () => {
  const file = usersFile(withBob('    foo: 1\n    disabled: "true"\n    groups: admins\n'))
  assert.throws(() => loadConfig(env(file)), (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err))
    assert.match(err.message, /users\.bob: unknown key "foo"/)
    assert.match(err.message, /users\.bob\.disabled: must be true or false/)
    assert.match(err.message, /users\.bob\.groups: must be a list of strings/)
    return true
  })
})

test('Authelia\'s other profile attributes are accepted', async () => {
  const c = load(withBob('    given_name: Bob\n    family_name: Builder\n    locale: en-GB\n    phone_number: "+1 555"\n    address:\n      country: UK\n    extra:\n      level: 3\n'))
  assert.equal(await signsIn(c, 'bob'), true)
})

test('YAML merge keys are resolved: disabled through <<: *off disables, and merged keys are checked', async () => {
  const viaAnchor = load(withBob('    <<: *off\n', 'defaults:\n  off: &off\n    disabled: true\n'))
  assert.equal(await signsIn(viaAnchor, 'bob'), false)
  assert.equal(await signsIn(viaAnchor, 'alice'), true)
  // A user entry itself as the base: bob takes alice's keys, his own win.
  const inline = load(`users:\n  alice: &alice\n    password: "${PASSWORD_HASH}"\n    disabled: yes\n  bob:\n    <<: *alice\n    displayname: Bob\n`)
  assert.equal(await signsIn(inline, 'bob'), false)
  const own = load(`users:\n  alice: &alice\n    password: "${PASSWORD_HASH}"\n    disabled: yes\n  bob:\n    <<: *alice\n    disabled: no\n`)
  assert.equal(await signsIn(own, 'bob'), true)
  refused(withBob('    <<: *off\n', 'defaults:\n  off: &off\n    disabled: "true"\n'), /users\.bob\.disabled: must be true or false/)
  refused(withBob('    <<: *off\n', 'defaults:\n  off: &off\n    disable: true\n'), /users\.bob: unknown key "disable"/)
})

test('the server refuses such a file with one line naming the file and the user', () => {
  const file = usersFile(withBob('    disabled: "true"\n'))
  const res = spawnSync(process.execPath, ['dist/src/server.js'], { env: { PATH: process.env.PATH, ...env(file) }, encoding: 'utf8', timeout: 10_000 })
  assert.equal(res.status, 1)
  const lines = res.stderr.trim().split('\n')
  assert.equal(lines.length, 1, res.stderr)
  assert.match(lines[0] as string, /^tessera: Invalid configuration: USERS_FILE .*users\.yml.*users\.bob\.disabled: must be true or false/)
})

test('a file that is not valid YAML is refused with the parser\'s reason and place, never a line of the file', () => {
  // The parser's full message quotes the offending line; here that line holds bob's password hash.
  refused(`users:\n  bob:\n    password: "${PASSWORD_HASH}"\n  bob:\n    password: "${PASSWORD_HASH}"\n`,
    /USERS_FILE: cannot read .* \(not valid YAML: Map keys must be unique at line 4, column 3\)/)
  const file = usersFile(`users:\n  bob:\n    password: "${PASSWORD_HASH}" junk\n`)
  assert.throws(() => loadConfig(env(file)), (err: unknown) => {
    assert.match(String(err), /not valid YAML: Unexpected scalar at node end at line 3, column \d+\)/)
    assert.ok(!String(err).includes('argon2id'), `no line of the file: ${String(err)}`)
    return true
  })
})

test('values YAML has and JSON has not still reach the checks as the parser made them', () => {
  // .inf is a number (a JSON round trip would make it null): refused as a display name all the same.
  refused(withBob('    displayname: .inf\n'), /users\.bob\.displayname: must be a string/)
  refused(withBob('    disabled: .nan\n'), /users\.bob\.disabled: must be true or false/)
})

test('when the process that reads the file cannot answer, the refusal says so in one line', () => {
  // NODE_OPTIONS set now reaches only child processes: the reader cannot load a module it is told to.
  const saved = process.env.NODE_OPTIONS
  process.env.NODE_OPTIONS = '--require=/nonexistent/tessera-test-preload.cjs'
  try {
    refused(withBob(''), /USERS_FILE: cannot read .* \(the reading process ended with exit code 1 before answering\)$/)
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS
    else process.env.NODE_OPTIONS = saved
  }
})

// PASSWORD_HASH's salt and digest under other parameters: argon2 would refuse or misread each.
const [, , , , salt, digest] = PASSWORD_HASH.split('$') as string[]
const BAD_HASHES: [string, string][] = [
  ['p=0', `$argon2id$v=19$m=1024,t=1,p=0$${salt}$${digest}`],
  ['t=0', `$argon2id$v=19$m=1024,t=0,p=1$${salt}$${digest}`],
  ['m below 8 KiB per lane', `$argon2id$v=19$m=15,t=1,p=2$${salt}$${digest}`],
  ['m above 2 GiB', `$argon2id$v=19$m=4194304,t=1,p=1$${salt}$${digest}`],
  ['t above 32', `$argon2id$v=19$m=1024,t=1000,p=1$${salt}$${digest}`],
  ['p above 64', `$argon2id$v=19$m=65536,t=1,p=65$${salt}$${digest}`],
  ['version 16', `$argon2id$v=16$m=1024,t=1,p=1$${salt}$${digest}`],
  ['no version', `$argon2id$m=1024,t=1,p=1$${salt}$${digest}`],
  ['a short salt', `$argon2id$v=19$m=1024,t=1,p=1$c29tZQ$${digest}`],
  ['a short digest', `$argon2id$v=19$m=1024,t=1,p=1$${salt}$RAME85Nb`],
  ['not base64', `$argon2id$v=19$m=1024,t=1,p=1$${salt}$${digest}!`],
  ['extra parameters', `$argon2id$v=19$m=1024,t=1,p=1,keyid=a$${salt}$${digest}`],
  ['argon2i', `$argon2i$v=19$m=1024,t=1,p=1$${salt}$${digest}`],
]

test('a hash argon2 cannot use refuses the file at load, naming the user', () => {
  for (const [what, phc] of BAD_HASHES) {
    // First in the file: the user whose costs the unknown-name dummy hash copies.
    refused(`users:\n  carol:\n    password: "${phc}"\n  alice:\n    password: "${PASSWORD_HASH}"\n`, /users\.carol\.password: /)
    assert.ok(what)
  }
})

test('with the first user\'s hash at other valid costs, an unknown name answers as a known one over HTTP', async () => {
  const { hash } = await import('@node-rs/argon2')
  const p2 = await hash(PASSWORD, { memoryCost: 64, timeCost: 1, parallelism: 2 })
  const redis = await startRedis()
  const stack = await startStack(redis, { env: { USERS_FILE: usersFile(`users:\n  dora:\n    password: "${p2}"\n  alice:\n    password: "${PASSWORD_HASH}"\n`) } })
  try {
    const post = async (username: string, password: string): Promise<number> => {
      const b = new Browser()
      const form = await b.get(`${stack.idpUrl}/login`)
      return (await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username, password })).status
    }
    assert.equal(await post('nobody', 'wrong'), 401)
    assert.equal(await post('dora', 'wrong'), 401)
    assert.equal(await post('nobody', PASSWORD), 401)
    assert.equal(await post('dora', PASSWORD), 303)
  } finally {
    await stack.close()
    await redis.stop()
  }
})
