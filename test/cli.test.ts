import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { verify } from '@node-rs/argon2'
import { parseSyncKeys } from '../src/shared/keyring.js'

const cli = (args: string[], input = ''): { status: number | null; stdout: string; stderr: string } =>
  spawnSync(process.execPath, ['dist/src/cli/main.js', ...args], { input, encoding: 'utf8', timeout: 20_000 })

test('hash-password prints an argon2id PHC string that verifies the password from standard input', async () => {
  const res = cli(['hash-password'], 's3cret pass\n')
  assert.equal(res.status, 0)
  const phc = res.stdout.trim()
  assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/)
  assert.ok(await verify(phc, 's3cret pass'))
  assert.ok(!(await verify(phc, 's3cret pass\n')), 'the trailing newline is not part of the password')
})

test('hash-password refuses an empty password with exit 1', () => {
  const res = cli(['hash-password'], '')
  assert.equal(res.status, 1)
  assert.match(res.stderr, /1 to 1024 characters/)
})

test('gen-key prints an id:key pair that SYNC_KEYS accepts', () => {
  const res = cli(['gen-key'])
  assert.equal(res.status, 0)
  const problems: string[] = []
  assert.ok(parseSyncKeys(res.stdout.trim(), 'SYNC_KEYS', problems))
  assert.deepEqual(problems, [])
})

test('an unknown command exits 2 with the usage', () => {
  const res = cli(['frobnicate'])
  assert.equal(res.status, 2)
  assert.match(res.stderr, /Usage: tessera/)
})
