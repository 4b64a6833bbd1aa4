/** The published .d.ts files: an app that imports `tessera/remote` type-checks with no cast. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const root = resolve(new URL('../..', import.meta.url).pathname)

const APP = `import Fastify from 'fastify'
import tesseraRemote, { type TesseraUser, type TesseraRemoteOptions } from 'tessera/remote'
import { buildIdp, loadConfig } from 'tessera/idp'

const app = Fastify()
const options: TesseraRemoteOptions = {
  idpUrl: 'https://sso.example.com', origin: 'https://shop.example.com', syncKeys: 'k1:x',
  redis: 'redis://127.0.0.1:6379', sessionSecret: 'x'.repeat(32), publicPaths: ['/'],
}
await app.register(tesseraRemote, options)
app.get('/private', async (req, reply) => {
  const user: TesseraUser | undefined = req.session.user
  const name: string | undefined = req.session.user?.displayName
  const groups: readonly string[] = req.session.user?.groups ?? []
  const visits: number = (req.session.get<number>('visits') ?? 0) + 1
  req.session.set('visits', visits)
  if (req.query === 'logout') return reply.tesseraLogout('/')
  return { user, name, groups, visits }
})
const idp = buildIdp(loadConfig(process.env))
await idp.ready()
`

const WRONG = `import Fastify from 'fastify'
import tesseraRemote from 'tessera/remote'
const app = Fastify()
await app.register(tesseraRemote, { idpUrl: 'x', origin: 'y', syncKeys: 'z', redis: 'r', sessionSecret: 's' })
app.get('/', async (req) => req.session.user?.password)
`

const EXPRESS_APP = `import express from 'express'
import tesseraExpress, { type TesseraExpressOptions, type TesseraUser, type TesseraAuth } from 'tessera/express'

const options: TesseraExpressOptions = {
  idpUrl: 'https://sso.example.com', origin: 'https://payroll.example.com', appKeys: 'k1:x',
  redis: 'redis://127.0.0.1:6379', sessionSecret: 'x'.repeat(32), publicPaths: ['/'], secondFactor: 'required',
}
const tessera = tesseraExpress(options)
const app = express()
app.use(tessera)
app.get('/private', (req, res) => {
  const user: TesseraUser | undefined = req.session.user
  const auth: TesseraAuth | undefined = req.session.auth
  const methods: string[] = auth?.methods.map((m) => m.method) ?? []
  const groups: readonly string[] = req.session.user?.groups ?? []
  const visits: number = (req.session.get<number>('visits') ?? 0) + 1
  req.session.set('visits', visits)
  res.json({ user, methods, groups, visits })
})
app.post('/logout', tessera.logout('/'))
const up: boolean = await tessera.ready()
const server = app.listen(3000)
server.close()
await tessera.close()
void up
`

const EXPRESS_WRONG = `import express from 'express'
import tesseraExpress from 'tessera/express'
const app = express()
app.use(tesseraExpress({ idpUrl: 'x', origin: 'y', appKeys: 'z', redis: 'r', sessionSecret: 's', secondFactor: 'always' }))
app.get('/', (req, res) => { res.json(req.session.user?.password) })
`

function compile(source: string): { status: number | null; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-types-'))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(root, join(dir, 'node_modules', 'tessera'), 'dir')
  for (const dep of ['fastify', 'express', '@types']) symlinkSync(join(root, 'node_modules', dep), join(dir, 'node_modules', dep), 'dir')
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  writeFileSync(join(dir, 'app.ts'), source)
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, types: ['node'] },
    files: ['app.ts'],
  }))
  const res = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', dir], { encoding: 'utf8', timeout: 60_000 })
  return { status: res.status, output: res.stdout + res.stderr }
}

test('an app using tessera/remote and tessera/idp compiles under strict tsc with no cast', () => {
  const res = compile(APP)
  assert.equal(res.status, 0, res.output)
})

test('the types catch a mistake: a field the session user does not have', () => {
  const res = compile(WRONG)
  assert.notEqual(res.status, 0)
  assert.match(res.output, /Property 'password' does not exist/)
})

test('an Express 5 app using tessera/express compiles under strict tsc with no cast', () => {
  const res = compile(EXPRESS_APP)
  assert.equal(res.status, 0, res.output)
})

test('README\'s Express example compiles under strict tsc as written', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /### Express \(`tessera\/express`\)[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  assert.ok(block, 'README has the Express example')
  const res = compile(block)
  assert.equal(res.status, 0, res.output)
})

test('the Express types catch mistakes: an unknown secondFactor value, a field the session user does not have', () => {
  const res = compile(EXPRESS_WRONG)
  assert.notEqual(res.status, 0)
  assert.match(res.output, /'"always"' is not assignable/)
  assert.match(res.output, /Property 'password' does not exist/)
})

test('docs/forward-auth.md\'s gate example compiles under strict tsc as written', () => {
  const doc = readFileSync(join(root, 'docs', 'forward-auth.md'), 'utf8')
  const block = /Or in a Node process of your own:\n\n```ts\n([\s\S]*?)```/.exec(doc)?.[1]
  assert.ok(block, 'docs/forward-auth.md has the buildGate example')
  const res = compile(block)
  assert.equal(res.status, 0, res.output)
})
