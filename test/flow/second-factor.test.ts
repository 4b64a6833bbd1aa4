/**
 * Second factors over HTTP with a real Redis: enrolling TOTP on the security page (fresh password,
 * CSRF), signing in with a code computed here, replayed and earlier codes refused, wrong codes
 * regulated per user, recovery codes good once, no session before the last factor, the policies,
 * and step-up of a password-only session.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestRedis } from '../helpers/redis-server.js'
import { Browser } from '../helpers/browser.js'
import { formFields, newKey, PASSWORD, startStack, useStack, type Stack } from '../helpers/stack.js'
import {
  assertHandedOver, codeAt, confirmPassword, enrolOnSecurityPage, passwordOnly, postFactor, postPassword,
  shownCodes, shownSecret, writeFactorUsers,
} from '../helpers/factors.js'
import { keys } from '../../src/shared/keys.js'
import { claimedSid } from '../../src/shared/handle-cookie.js'

// One user per test: every stack here shares the one Redis, so factors enrolled in one test stay.
const USERS = { paul: [], alice: [], carol: [], dave: [], erin: [], frank: [], grace: [], judy: [], kim: [], leo: [], nina: [], olga: [], quinn: [], rita: [], sam: [], tina: [], uma: [], vera: [] }
const IDP_COOKIE = 'tessera_idp'
const host = (url: string): string => new URL(url).hostname

let redis: TestRedis
let stack: Stack
useStack((r, s) => { redis = r; stack = s }, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers(USERS) } })

/** The methods in the signed identity of the IdP session `b` holds, and its sid. */
async function idpSession(b: Browser): Promise<{ sid: string; amr: string[] }> {
  const sid = claimedSid(b.cookies(host(stack.idpUrl)).get(IDP_COOKIE)) as string
  assert.ok(sid, 'an IdP session cookie')
  const record = await redis.client().hget(keys.session(sid), 'u')
  assert.ok(record, 'the session exists')
  const payload = JSON.parse(Buffer.from(record.split('.')[1] as string, 'base64url').toString()) as { amr: { m: string }[] }
  return { sid, amr: payload.amr.map((a) => a.m) }
}

test('the security page needs a session, a CSRF token and the password typed again', async () => {
  assert.equal((await new Browser().get(`${stack.idpUrl}/security`)).location(), `${stack.idpUrl}/login?next=%2Fsecurity`, 'no session: sent to sign in, and back')
  // A security form posted after the session ended elsewhere: 401, and a way to sign in and come back.
  const stale = await new Browser().post(`${stack.idpUrl}/security/recovery/regenerate`, { csrf: 'x' })
  assert.equal(stale.status, 401)
  assert.match(stale.body, /<a href="\/login\?next=%2Fsecurity">Sign in<\/a>/)
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'frank')
  const page = await b.get(`${stack.idpUrl}/security`)
  assert.match(page.body, /action="\/security\/confirm"/, 'not fresh: the password form')
  assert.match(page.body, /You have none yet, so a password is enough to sign in/, 'no factor yet: no second step promised')
  assert.doesNotMatch(page.body, /a sign-in also asks for one of them/)
  assert.doesNotMatch(page.body, /totp\/start/)
  const { csrf } = formFields(page.body)
  const notFresh = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf: csrf as string }, 'application/json')
  assert.equal(notFresh.status, 403)
  assert.equal(notFresh.json().code, 'TESSERA_ERR_REAUTH_REQUIRED')
  const wrong = await b.post(`${stack.idpUrl}/security/confirm`, { csrf: csrf as string, password: 'not the password' })
  assert.equal(wrong.status, 401)
  const noCsrf = await b.post(`${stack.idpUrl}/security/confirm`, { password: 'x' }, 'application/json')
  assert.equal(noCsrf.json().code, 'TESSERA_ERR_CSRF')
  await confirmPassword(b, stack.idpUrl)
  const badCsrf = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf: 'forged' }, 'application/json')
  assert.equal(badCsrf.status, 403)
  assert.equal(badCsrf.json().code, 'TESSERA_ERR_CSRF')
  const noSession = await new Browser().post(`${stack.idpUrl}/security/totp/remove`, { csrf: csrf as string }, 'application/json')
  assert.equal(noSession.status, 401)
  const start = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf: csrf as string })
  assert.equal(start.status, 200)
  assert.match(start.body, /<img src="data:image\/svg\+xml;base64,[A-Za-z0-9+/=]+"/, 'the QR code is an inline SVG image')
  assert.doesNotMatch(start.body, /<script/i)
  const secret = shownSecret(start)
  const wrongCode = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(secret, 5) })
  assert.equal(wrongCode.status, 401, 'a wrong first code enrols nothing')
  assert.deepEqual(await redis.client().hkeys(keys.factors('frank')), [])
  const ok = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(secret) })
  assert.equal(ok.status, 200)
  assert.equal(shownCodes(ok).length, 10)
  const stored = await redis.client().hgetall(keys.factors('frank'))
  assert.ok(stored.totp && !stored.totp.includes(secret), 'the secret is sealed at rest')
  assert.equal(Object.keys(stored).filter((k) => k.startsWith('rc:')).length, 10)
  for (const code of shownCodes(ok)) assert.ok(!JSON.stringify(stored).includes(code), 'recovery codes are stored hashed')
  assert.match((await b.get(`${stack.idpUrl}/security`)).body, /On since/)
})

test('an enrolment form confirms once: replayed or raced, it enrols nothing more and cannot put back a changed secret', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'quinn')
  const csrf = await confirmPassword(b, stack.idpUrl)
  const first = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf })
  const firstSecret = shownSecret(first)
  const confirm = { ...formFields(first.body), code: codeAt(firstSecret) }
  const ok = await b.post(`${stack.idpUrl}/security/totp/confirm`, confirm)
  assert.equal(ok.status, 200)
  const stored = await redis.client().hgetall(keys.factors('quinn'))
  const wrong = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...confirm, code: codeAt(firstSecret, 5) })
  assert.equal(wrong.status, 401)
  for (const code of [codeAt(firstSecret), codeAt(firstSecret, 1)]) {
    // Not the form again (it can never succeed now): the security page, which shows what is set up.
    const replay = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...confirm, code })
    assert.equal(replay.status, 303)
    assert.equal(replay.location(), `${stack.idpUrl}/security`)
  }
  assert.deepEqual(await redis.client().hgetall(keys.factors('quinn')), stored, 'the first recovery codes stand')

  // The user changes the secret; the first form, still within its 10 minutes, cannot put it back.
  const second = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf })
  assert.equal((await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(second.body), code: codeAt(shownSecret(second)) })).status, 200)
  const changed = await redis.client().hget(keys.factors('quinn'), 'totp')
  assert.notEqual((await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...confirm, code: codeAt(firstSecret, 1) })).status, 200)
  assert.equal(await redis.client().hget(keys.factors('quinn'), 'totp'), changed, 'the changed secret stays')

  // Three posts of one fresh form at once: one enrols.
  const third = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf })
  const race = { ...formFields(third.body), code: codeAt(shownSecret(third)) }
  const answers = await Promise.all([1, 2, 3].map(() => b.post(`${stack.idpUrl}/security/totp/confirm`, race)))
  assert.deepEqual(answers.map((a) => a.status).sort(), [200, 303, 303])
})

test('the enrolment at sign-in confirms once too: posted three times at once, or again after the factor is removed', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'rita')
  b.clear(host(stack.appAUrl))
  const first = await b.get(`${stack.appAUrl}/private`)
  assert.equal((await b.get(`${first.location() as string}&mfa=1`)).status, 303)
  const enrol = await b.get(`${stack.idpUrl}/login/second-factor`)
  const form = { ...formFields(enrol.body), code: codeAt(shownSecret(enrol)) }
  const answers = await Promise.all([1, 2, 3].map(() => b.post(`${stack.idpUrl}/login/second-factor/enrol`, form)))
  const shown = answers.filter((a) => a.status === 200)
  assert.equal(shown.length, 1, `one enrols: ${answers.map((a) => a.status).join(', ')}`)
  assert.equal((await redis.client().hkeys(keys.factors('rita'))).filter((k) => k.startsWith('rc:')).length, 10)
  const codesPage = shown[0] as { body: string }

  // The factor removed on the security page while the sign-in still waits: the spent form cannot enrol again.
  const csrf = await confirmPassword(b, stack.idpUrl)
  assert.equal((await b.post(`${stack.idpUrl}/security/totp/remove`, { csrf })).status, 303)
  const replay = await b.post(`${stack.idpUrl}/login/second-factor/enrol`, form)
  assert.equal(replay.status, 303, 'the spent form goes to the step page, which enrols afresh')
  assert.equal(replay.location(), `${stack.idpUrl}/login/second-factor`)
  assert.equal(await redis.client().hget(keys.factors('rita'), 'totp'), null, 'nothing enrolled again')
  await assertHandedOver(b, await b.post(`${stack.idpUrl}/login/second-factor/continue`, formFields(codesPage.body)), stack.appAUrl, 'rita')
})

test('with TOTP enrolled, sign-in asks for a code: no session or token before it; a code is good once, an earlier step never', async () => {
  const { secret } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'alice'), stack.idpUrl)
  const b = new Browser()
  const posted = await postPassword(b, stack.idpUrl, stack.appAUrl, 'alice')
  assert.equal(posted.status, 303)
  assert.equal(posted.location(), `${stack.idpUrl}/login/second-factor`)
  assert.equal(b.cookies(host(stack.idpUrl)).get(IDP_COOKIE), undefined, 'no IdP session before the second factor')
  assert.ok(!b.setCookies.some((c) => c.startsWith(`${IDP_COOKIE}=`) && !c.startsWith(`${IDP_COOKIE}=;`)), 'no session cookie was ever set')
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401, 'not signed in at the app')
  assert.equal((await b.get(`${stack.idpUrl}/security`)).status, 302, 'not signed in at the IdP')
  const sessions = await redis.client().smembers(keys.userIndex('alice'))
  // The next step's code: the enrolment spent this step's.
  const code = codeAt(secret, 1)
  await assertHandedOver(b, await postFactor(b, stack.idpUrl, { code }), stack.appAUrl, 'alice')
  assert.deepEqual((await idpSession(b)).amr, ['pwd', 'otp'])
  assert.equal((await redis.client().smembers(keys.userIndex('alice'))).length, sessions.length + 1, 'one session, made at the last factor')

  for (const [why, again] of [['the same code', code], ['an earlier step', codeAt(secret, -1)]] as const) {
    const c = new Browser()
    assert.equal((await postPassword(c, stack.idpUrl, stack.appAUrl, 'alice')).status, 303)
    const refused = await postFactor(c, stack.idpUrl, { code: again })
    assert.equal(refused.status, 401, `${why} is refused`)
    assert.match(refused.body, /Incorrect or already used code/)
    assert.equal(c.cookies(host(stack.idpUrl)).get(IDP_COOKIE), undefined)
  }
  // Back after the finished sign-in: the signed-in page, not "this sign-in has expired".
  const back = await b.get(`${stack.idpUrl}/login/second-factor`)
  assert.equal(back.status, 303)
  assert.equal(back.location(), `${stack.idpUrl}/`)
  const json = await new Browser().post(`${stack.idpUrl}/login/second-factor`, { code: '123456' }, 'application/json')
  assert.equal(json.status, 400, 'no pending sign-in: expired')
  assert.equal(json.json().code, 'TESSERA_ERR_SIGN_IN_EXPIRED')
})

test('a recovery code signs in once; the pending sign-in is used once', async () => {
  const { codes } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'carol'), stack.idpUrl)
  const b = new Browser()
  await postPassword(b, stack.idpUrl, stack.appAUrl, 'carol')
  const page = await b.get(`${stack.idpUrl}/login/second-factor`)
  const fields = formFields(page.body)
  const first = await b.post(`${stack.idpUrl}/login/second-factor`, { ...fields, recovery: (codes[0] as string).toUpperCase().replace(/-/g, ' ') })
  await assertHandedOver(b, first, stack.appAUrl, 'carol')
  const replayed = await b.post(`${stack.idpUrl}/login/second-factor`, { ...fields, recovery: codes[1] as string }, 'application/json')
  assert.equal(replayed.status, 400, 'the finished sign-in cannot be finished again')
  assert.equal(replayed.json().code, 'TESSERA_ERR_SIGN_IN_EXPIRED')

  const c = new Browser()
  await postPassword(c, stack.idpUrl, stack.appAUrl, 'carol')
  assert.equal((await postFactor(c, stack.idpUrl, { recovery: codes[0] as string })).status, 401, 'a used recovery code is refused')
  await assertHandedOver(c, await postFactor(c, stack.idpUrl, { recovery: codes[1] as string }), stack.appAUrl, 'carol')
  assert.equal((await redis.client().hkeys(keys.factors('carol'))).filter((k) => k.startsWith('rc:')).length, 8)
})

test('a second-step form of an earlier sign-in (another tab signed in again): 403, with a link to the current step, which signs in', async () => {
  const { codes } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'vera'), stack.idpUrl)
  const b = new Browser()
  await postPassword(b, stack.idpUrl, stack.appAUrl, 'vera')
  const tab1 = formFields((await b.get(`${stack.idpUrl}/login/second-factor`)).body)
  await postPassword(b, stack.idpUrl, stack.appAUrl, 'vera') // tab 2: the password again, a new pending sign-in
  const stale = await b.post(`${stack.idpUrl}/login/second-factor`, { ...tab1, recovery: codes[0] as string })
  assert.equal(stale.status, 403)
  assert.match(stale.body, /TESSERA_ERR_CSRF/)
  const link = /<a href="([^"]+)">Go to the current sign-in step<\/a>/.exec(stale.body)?.[1]
  assert.equal(link, '/login/second-factor', 'a way on, not only the start page')
  assert.equal((await redis.client().hkeys(keys.factors('vera'))).filter((k) => k.startsWith('rc:')).length, 10, 'the stale form spent no code')
  await assertHandedOver(b, await postFactor(b, stack.idpUrl, { recovery: codes[0] as string }), stack.appAUrl, 'vera')
  const json = await new Browser().post(`${stack.idpUrl}/security/confirm`, { csrf: 'x', password: 'y' })
  assert.doesNotMatch(json.body, /current sign-in step/, 'only the second step\'s forms get that link')
})

test('two answers posted at once for one sign-in: one signs in, the other spends nothing', async () => {
  const { codes } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'olga'), stack.idpUrl)
  const unused = async (): Promise<number> => (await redis.client().hkeys(keys.factors('olga'))).filter((k) => k.startsWith('rc:')).length
  assert.equal(await unused(), 10)
  for (const [first, second] of [[codes[0], codes[1]], [codes[2], codes[3]]] as [string, string][]) {
    const b = new Browser()
    await postPassword(b, stack.idpUrl, stack.appAUrl, 'olga')
    const fields = formFields((await b.get(`${stack.idpUrl}/login/second-factor`)).body)
    const answers = await Promise.all([first, second].map((recovery) => b.post(`${stack.idpUrl}/login/second-factor`, { ...fields, recovery }, 'application/json')))
    assert.deepEqual(answers.map((a) => a.status).sort(), [303, 400], answers.map((a) => `${a.status} ${a.body.slice(0, 80)}`).join(' | '))
  }
  assert.equal(await unused(), 8, 'one recovery code per sign-in, the losing answer\'s kept')
})

test('wrong codes are regulated per user: the user is held, another user is not', async () => {
  const limited = await startStack(redis, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers(USERS), LOGIN_MAX_RETRIES: '3' } })
  try {
    const dave = await enrolOnSecurityPage(await passwordOnly(limited.idpUrl, limited.appAUrl, 'dave'), limited.idpUrl)
    const grace = await enrolOnSecurityPage(await passwordOnly(limited.idpUrl, limited.appAUrl, 'grace'), limited.idpUrl)
    const b = new Browser()
    await postPassword(b, limited.idpUrl, limited.appAUrl, 'dave')
    for (let i = 0; i < 3; i++) assert.equal((await postFactor(b, limited.idpUrl, { code: '000000' })).status, 401)
    const held = await postFactor(b, limited.idpUrl, { code: codeAt(dave.secret, 1) })
    assert.equal(held.status, 401, 'after 3 failures even the right code is refused')
    assert.equal(b.cookies(host(limited.idpUrl)).get(IDP_COOKIE), undefined)
    const recovery = await postFactor(b, limited.idpUrl, { recovery: dave.codes[0] as string })
    assert.equal(recovery.status, 401, 'and so is a recovery code')
    const other = new Browser()
    await postPassword(other, limited.idpUrl, limited.appAUrl, 'grace')
    await assertHandedOver(other, await postFactor(other, limited.idpUrl, { code: codeAt(grace.secret, 1) }), limited.appAUrl, 'grace')
    assert.equal((await postPassword(new Browser(), limited.idpUrl, limited.appAUrl, 'dave')).status, 303, 'the password itself is still accepted')
  } finally {
    await limited.close()
  }
})

test('SECOND_FACTOR=required: a user with none enrols right after the password, then signs in; the last factor cannot be removed', async () => {
  const required = await startStack(redis, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers(USERS), SECOND_FACTOR: 'required' } })
  try {
    const b = new Browser()
    const posted = await postPassword(b, required.idpUrl, required.appAUrl, 'erin')
    assert.equal(posted.location(), `${required.idpUrl}/login/second-factor`)
    const enrol = await b.get(`${required.idpUrl}/login/second-factor`)
    assert.match(enrol.body, /needs a second factor/)
    const secret = shownSecret(enrol)
    const codes = await b.post(`${required.idpUrl}/login/second-factor/enrol`, { ...formFields(enrol.body), code: codeAt(secret) })
    assert.equal(codes.status, 200)
    assert.equal(shownCodes(codes).length, 10)
    assert.equal(b.cookies(host(required.idpUrl)).get(IDP_COOKIE), undefined, 'still no session while the codes are shown')
    await assertHandedOver(b, await b.post(`${required.idpUrl}/login/second-factor/continue`, formFields(codes.body)), required.appAUrl, 'erin')

    const csrf = await confirmPassword(b, required.idpUrl)
    assert.match((await b.get(`${required.idpUrl}/security`)).body, /cannot be removed/)
    const remove = await b.post(`${required.idpUrl}/security/totp/remove`, { csrf }, 'application/json')
    assert.equal(remove.status, 409)
    assert.equal(remove.json().code, 'TESSERA_ERR_FACTOR_REQUIRED')
    assert.ok((await redis.client().hkeys(keys.factors('erin'))).includes('totp'), 'the factor is still there')
  } finally {
    await required.close()
  }
})

test('SECOND_FACTOR_GROUPS: required for members of the groups only', async () => {
  const groups = await startStack(redis, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers({ henry: ['finance'], ivan: ['staff'] }), SECOND_FACTOR_GROUPS: 'finance' } })
  try {
    const member = await postPassword(new Browser(), groups.idpUrl, groups.appAUrl, 'henry')
    assert.equal(member.location(), `${groups.idpUrl}/login/second-factor`, 'a finance member is led to enrol')
    const b = new Browser()
    await assertHandedOver(b, await postPassword(b, groups.idpUrl, groups.appAUrl, 'ivan'), groups.appAUrl, 'ivan')
  } finally {
    await groups.close()
  }
})

test('step-up: mfa=1 on a password-only session asks for the code, adds otp to the same session and hands over', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'judy')
  const before = await idpSession(b)
  assert.deepEqual(before.amr, ['pwd'])
  const { secret } = await enrolOnSecurityPage(b, stack.idpUrl)
  b.clear(host(stack.appAUrl))
  const first = await b.get(`${stack.appAUrl}/private`)
  const stepUp = `${first.location() as string}&mfa=1`
  const asked = await b.get(stepUp)
  assert.equal(asked.status, 303, 'no hand-over yet')
  assert.equal(asked.location(), `${stack.idpUrl}/login/second-factor`)
  const form = await b.get(`${stack.idpUrl}/login/second-factor`)
  assert.match(form.body, /asks for a second factor/)
  await assertHandedOver(b, await postFactor(b, stack.idpUrl, { code: codeAt(secret, 1) }), stack.appAUrl, 'judy')
  const after = await idpSession(b)
  assert.equal(after.sid, before.sid, 'the same session')
  assert.deepEqual(after.amr, ['pwd', 'otp'])
  b.clear(host(stack.appAUrl))
  const again = await b.get(`${stack.appAUrl}/private`)
  const direct = await b.get(`${again.location() as string}&mfa=1`)
  assert.equal(direct.status, 302, 'a session with a second factor is handed over at once')
  assert.ok(new URL(direct.location() as string).searchParams.get('token'))
})

test('step-up of a user with no factor leads to enrolment, bound to the pending step-up', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'kim')
  const before = await idpSession(b)
  b.clear(host(stack.appAUrl))
  const first = await b.get(`${stack.appAUrl}/private`)
  assert.equal((await b.get(`${first.location() as string}&mfa=1`)).status, 303)
  const enrol = await b.get(`${stack.idpUrl}/login/second-factor`)
  const secret = shownSecret(enrol)
  const codes = await b.post(`${stack.idpUrl}/login/second-factor/enrol`, { ...formFields(enrol.body), code: codeAt(secret) })
  await assertHandedOver(b, await b.post(`${stack.idpUrl}/login/second-factor/continue`, formFields(codes.body)), stack.appAUrl, 'kim')
  assert.deepEqual(await idpSession(b), { sid: before.sid, amr: ['pwd', 'otp'] })
})

test('mfa=1 without a session keeps asking for a second factor after the password', async () => {
  const b = new Browser()
  const posted = await postPassword(b, stack.idpUrl, stack.appAUrl, 'leo', (u) => `${u}&mfa=1`)
  assert.equal(posted.status, 303)
  assert.equal(posted.location(), `${stack.idpUrl}/login/second-factor`, 'leo has no factor yet: led to enrol')
  assert.match((await b.get(`${stack.idpUrl}/login/second-factor`)).body, /needs a second factor/)
})

test('without FACTOR_KEYS, TOTP cannot be enrolled (a clear 409), and mfa=1 for a user with none is refused the same way', async () => {
  const bare = await startStack(redis, { env: { USERS_FILE: writeFactorUsers({ mona: [] }) } })
  try {
    const b = await passwordOnly(bare.idpUrl, bare.appAUrl, 'mona')
    const csrf = await confirmPassword(b, bare.idpUrl)
    assert.match((await b.get(`${bare.idpUrl}/security`)).body, /does not offer authenticator-app codes/)
    const start = await b.post(`${bare.idpUrl}/security/totp/start`, { csrf }, 'application/json')
    assert.equal(start.status, 409)
    assert.equal(start.json().code, 'TESSERA_ERR_FACTOR_UNAVAILABLE')
    const page = await b.post(`${bare.idpUrl}/security/totp/start`, { csrf })
    assert.match(page.body, /does not offer authenticator-app codes/, 'the page says why')
    const posted = await postPassword(new Browser(), bare.idpUrl, bare.appAUrl, 'mona', (u) => `${u}&mfa=1`)
    assert.equal(posted.status, 409)
  } finally {
    await bare.close()
  }
})

test('SECOND_FACTOR=off: no second step, even for a user with a factor enrolled', async () => {
  await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'nina'), stack.idpUrl)
  const off = await startStack(redis, { env: { FACTOR_KEYS: newKey('f1'), USERS_FILE: writeFactorUsers({ nina: [] }), SECOND_FACTOR: 'off' } })
  try {
    const b = new Browser()
    await assertHandedOver(b, await postPassword(b, off.idpUrl, off.appAUrl, 'nina'), off.appAUrl, 'nina')
    const security = (await b.get(`${off.idpUrl}/security`)).body
    assert.match(security, /This sign-in service asks for none at the moment/, 'the security page does not promise a second step')
    assert.doesNotMatch(security, /a sign-in also asks for one of them/)
  } finally {
    await off.close()
  }
})

test('after a factor change the user is offered to sign out their other sessions (V7.4.3)', async () => {
  const other = await passwordOnly(stack.idpUrl, stack.appAUrl, 'paul')
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'paul')
  const csrf = await confirmPassword(b, stack.idpUrl)
  const start = await b.post(`${stack.idpUrl}/security/totp/start`, { csrf })
  const codes = await b.post(`${stack.idpUrl}/security/totp/confirm`, { ...formFields(start.body), code: codeAt(shownSecret(start)) })
  assert.match(codes.body, /<a href="\/sessions">Sign out your other sessions<\/a>/)
  assert.match((await b.get(`${stack.idpUrl}/security`)).body, /<a href="\/sessions">Sign out your other sessions<\/a>/)
  const sessions = await b.get(`${stack.idpUrl}/sessions`)
  const ended = await b.post(`${stack.idpUrl}/sessions/end-others`, { csrf: formFields(sessions.body).csrf as string })
  assert.equal(ended.status, 303)
  assert.equal((await other.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 401, 'the other session ended')
  assert.equal((await b.get(`${stack.appAUrl}/api/me`, 'application/json')).status, 200, 'this one lives on')
})

test('every IdP redirect is Cache-Control: no-store; only the static files are cacheable', async () => {
  const noStore = (page: { status: number; headers: Headers }, what: string): void => {
    assert.equal(page.status, 303, what)
    assert.equal(page.headers.get('cache-control'), 'no-store', what)
  }
  // POST /login with no callback: to `/`.
  const b = new Browser()
  const form = await b.get(`${stack.idpUrl}/login`)
  noStore(await b.post(`${stack.idpUrl}/login`, { ...formFields(form.body), username: 'sam', password: PASSWORD }), 'POST /login to /')
  // POST /security/totp/remove with no TOTP: back to /security.
  const csrf = await confirmPassword(b, stack.idpUrl)
  noStore(await b.post(`${stack.idpUrl}/security/totp/remove`, { csrf }), 'POST /security/totp/remove with none')
  // POST /logout to an allowed callback.
  const home = await b.get(`${stack.idpUrl}/`)
  noStore(await b.post(`${stack.idpUrl}/logout`, { csrf: formFields(home.body).csrf as string, callback: Buffer.from(`${stack.appAUrl}/`).toString('base64url') }), 'POST /logout to a callback')

  // The enrolment's routes outside an enrolment: a user with a factor, at the code form.
  const { secret } = await enrolOnSecurityPage(await passwordOnly(stack.idpUrl, stack.appAUrl, 'tina'), stack.idpUrl)
  assert.ok(secret)
  const c = new Browser()
  assert.equal((await postPassword(c, stack.idpUrl, stack.appAUrl, 'tina')).location(), `${stack.idpUrl}/login/second-factor`)
  const codeForm = await c.get(`${stack.idpUrl}/login/second-factor`)
  const pendingCsrf = formFields(codeForm.body).csrf as string
  noStore(await c.post(`${stack.idpUrl}/login/second-factor/enrol`, { csrf: pendingCsrf }), 'POST /login/second-factor/enrol with a factor')
  noStore(await c.post(`${stack.idpUrl}/login/second-factor/continue`, { csrf: pendingCsrf }), 'POST /login/second-factor/continue before the factor')

  const css = await new Browser().get(`${stack.idpUrl}/static/tessera.css`)
  assert.equal(css.headers.get('cache-control'), 'public, max-age=3600', 'the stylesheet is cacheable')
  // Every browser asks for it: an empty answer, kept a day, rather than a 404 in every page's console.
  const icon = await new Browser().get(`${stack.idpUrl}/favicon.ico`)
  assert.equal(icon.status, 204)
  assert.equal(icon.headers.get('cache-control'), 'public, max-age=86400')
})

test('POST /security/confirm with no session: 401 TESSERA_ERR_UNAUTHENTICATED as JSON, as the other /security posts; a browser signs in and comes back', async () => {
  const json = await new Browser().post(`${stack.idpUrl}/security/confirm`, { csrf: 'x', password: 'x' }, 'application/json')
  assert.equal(json.status, 401)
  assert.equal(json.json().code, 'TESSERA_ERR_UNAUTHENTICATED')
  const other = await new Browser().post(`${stack.idpUrl}/security/totp/start`, { csrf: 'x' }, 'application/json')
  assert.deepEqual([other.status, other.json().code], [json.status, json.json().code], 'as /security/totp/start answers')
  const page = await new Browser().post(`${stack.idpUrl}/security/confirm`, { csrf: 'x', password: 'x' })
  assert.equal(page.status, 303)
  assert.equal(page.location(), `${stack.idpUrl}/login?next=%2Fsecurity`, 'back to /security after signing in, as /sessions/confirm goes back to /sessions')
  assert.equal(page.headers.get('cache-control'), 'no-store')
})

test('"make new recovery codes" replaces them once per form: a reload of the codes page keeps the codes it showed', async () => {
  const b = await passwordOnly(stack.idpUrl, stack.appAUrl, 'uma')
  const { codes: enrolled } = await enrolOnSecurityPage(b, stack.idpUrl)
  const form = formFields((await b.get(`${stack.idpUrl}/security`)).body)
  assert.ok(form.once, 'the form carries a value of its own')
  const made = await b.post(`${stack.idpUrl}/security/recovery/regenerate`, form)
  assert.equal(made.status, 200)
  const codes = shownCodes(made)
  assert.equal(codes.length, 10)
  assert.notDeepEqual(codes, enrolled)
  const stored = (await redis.client().hkeys(keys.factors('uma'))).filter((f) => f.startsWith('rc:')).sort()
  // The browser resubmits the same form (reload, Back then Forward): nothing new is made.
  const again = await b.post(`${stack.idpUrl}/security/recovery/regenerate`, form)
  assert.equal(again.status, 303)
  assert.equal(again.location(), `${stack.idpUrl}/security`)
  assert.deepEqual((await redis.client().hkeys(keys.factors('uma'))).filter((f) => f.startsWith('rc:')).sort(), stored, 'the codes shown still stand')
  // The page shown afresh makes new ones.
  const fresh = await b.post(`${stack.idpUrl}/security/recovery/regenerate`, formFields((await b.get(`${stack.idpUrl}/security`)).body))
  assert.equal(fresh.status, 200)
  assert.notDeepEqual(shownCodes(fresh), codes)
})
