/** The second-factor policy as plain decisions: who must give one, what follows the password, what may be removed. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { loadConfig } from '../../src/idp/config.js'
import { ConfigError } from '../../src/shared/errors.js'
import { writeUsersFile } from '../helpers/users.js'
import { newKey } from '../helpers/sync-keys.js'
import { hasSecondFactor, isRequiredFor, mayRemoveFactor, parseGroups, secondStepFor, type EnrolledFactors, type SecondFactorPolicy } from '../../src/idp/second-factor-policy.js'

const NONE: EnrolledFactors = { totp: false, passkeys: 0, recoveryCodes: 0 }
const TOTP: EnrolledFactors = { totp: true, passkeys: 0, recoveryCodes: 10 }
const BOTH: EnrolledFactors = { totp: true, passkeys: 1, recoveryCodes: 10 }
const ONLY_CODES: EnrolledFactors = { totp: false, passkeys: 0, recoveryCodes: 3 }
const staff = { groups: ['staff'] }
const finance = { groups: ['staff', 'finance'] }
const policy = (mode: SecondFactorPolicy['mode'], groups: string[] = []): SecondFactorPolicy => ({ mode, groups })

test('who must give a second factor', () => {
  assert.equal(isRequiredFor(policy('off'), staff), false)
  assert.equal(isRequiredFor(policy('optional'), staff), false)
  assert.equal(isRequiredFor(policy('required'), staff), true)
  assert.equal(isRequiredFor(policy('optional', ['finance']), finance), true, 'groups require it for their members')
  assert.equal(isRequiredFor(policy('optional', ['finance']), staff), false, 'and for them only')
  assert.equal(isRequiredFor(policy('required', ['finance']), staff), false, 'groups narrow required too')
  assert.equal(isRequiredFor(policy('off', ['finance']), finance), false)
})

test('the step after the password', () => {
  assert.equal(secondStepFor(policy('optional'), staff, NONE), 'none')
  assert.equal(secondStepFor(policy('optional'), staff, TOTP), 'verify', 'an enrolled user is always asked')
  assert.equal(secondStepFor(policy('required'), staff, NONE), 'enrol')
  assert.equal(secondStepFor(policy('optional', ['finance']), finance, NONE), 'enrol')
  assert.equal(secondStepFor(policy('optional', ['finance']), staff, NONE), 'none')
  assert.equal(secondStepFor(policy('off'), staff, TOTP), 'none', 'off: no second step at all')
  assert.equal(secondStepFor(policy('optional'), staff, NONE, true), 'enrol', 'step-up of a user with none: enrol')
  assert.equal(secondStepFor(policy('optional'), staff, ONLY_CODES), 'none', 'recovery codes alone are no factor')
  assert.equal(secondStepFor(policy('required'), staff, ONLY_CODES), 'enrol')
})

test('the last factor of a user who must have one cannot be removed', () => {
  assert.equal(mayRemoveFactor(policy('required'), staff, TOTP), false)
  assert.equal(mayRemoveFactor(policy('required'), staff, BOTH), true, 'another factor remains')
  assert.equal(mayRemoveFactor(policy('optional'), staff, TOTP), true)
  assert.equal(mayRemoveFactor(policy('optional', ['finance']), finance, TOTP), false)
})

test('a session holds a second factor when it has otp or hwk', () => {
  assert.equal(hasSecondFactor([{ method: 'pwd' }]), false)
  assert.equal(hasSecondFactor([{ method: 'pwd' }, { method: 'otp' }]), true)
  assert.equal(hasSecondFactor([{ method: 'hwk' }]), true)
  assert.deepEqual(parseGroups(' finance, ,admins,finance '), ['finance', 'admins'])
})

test('start-up checks SECOND_FACTOR, SECOND_FACTOR_GROUPS and FACTOR_KEYS, failing closed', () => {
  const base = {
    SYNC_KEYS: newKey('k1'), SESSION_SECRET: randomBytes(32).toString('base64url'), USERS_FILE: writeUsersFile(), PUBLIC_URL: 'http://127.0.0.1:3000',
  }
  const problems = (env: Record<string, string>): string => {
    try { loadConfig({ ...base, ...env }); return '' } catch (err) { assert.ok(err instanceof ConfigError); return err.message }
  }
  assert.deepEqual(loadConfig(base).secondFactor, { mode: 'optional', groups: [] }, 'optional by default')
  assert.equal(loadConfig(base).factorKeyring, undefined)
  assert.match(problems({ SECOND_FACTOR: 'required' }), /FACTOR_KEYS: is required when SECOND_FACTOR is required/)
  assert.match(problems({ SECOND_FACTOR_GROUPS: 'finance' }), /FACTOR_KEYS: is required/)
  assert.match(problems({ SECOND_FACTOR: 'off', SECOND_FACTOR_GROUPS: 'finance', FACTOR_KEYS: newKey('f1') }), /SECOND_FACTOR_GROUPS: is set while SECOND_FACTOR is off/)
  assert.match(problems({ SECOND_FACTOR: 'always' }), /SECOND_FACTOR/)
  assert.match(problems({ FACTOR_KEYS: 'f1:short' }), /FACTOR_KEYS\[0\]/)
  assert.match(problems({ NODE_ENV: 'production', FACTOR_KEYS: 'demo:ZGVtby1vbmx5LWZhY3Rvci1rZXktbm90LWluLXByb2Q' }), /FACTOR_KEYS: holds a published demo key/)
  const ok = loadConfig({ ...base, SECOND_FACTOR: 'required', FACTOR_KEYS: `${newKey('f2')},${newKey('f1')}` })
  assert.equal(ok.factorKeyring?.current.id, 'f2')
  assert.equal(problems({ FACTOR_KEYS: newKey('f1') }).includes('FACTOR_KEYS'), false)
})
