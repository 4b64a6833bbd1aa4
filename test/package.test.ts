/** What `npm publish` would ship (from `npm pack --dry-run`: no scripts run, dist as built), and what git tracks. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { repoRoot } from './helpers/callbacks.js'

const root = repoRoot()
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { license: string; bin: Record<string, string>; exports: Record<string, string | Record<string, string>> }
const packed = (JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' })) as { files: { path: string }[] }[])[0]
const files = new Set((packed?.files ?? []).map((f) => f.path))

test('the package ships its MIT LICENSE', () => {
  assert.equal(pkg.license, 'MIT')
  assert.ok(files.has('LICENSE'))
  assert.match(readFileSync(join(root, 'LICENSE'), 'utf8'), /^MIT License\n\nCopyright \(c\) 2026 Tessera authors\n/)
})

test('the package ships no source map (maps would point at src/*.ts, which it does not ship)', () => {
  assert.deepEqual([...files].filter((f) => f.endsWith('.map')), [])
  assert.deepEqual([...files].filter((f) => /sourceMappingURL/.test(readFileSync(join(root, f), 'utf8').slice(-300)) && f.endsWith('.js')), [])
})

test('every bin and export the package names is in it', () => {
  const targets = [...Object.values(pkg.bin), ...Object.values(pkg.exports).flatMap((e) => (typeof e === 'string' ? [e] : Object.values(e)))]
  for (const t of targets) assert.ok(files.has(t.replace(/^\.\//, '')), t)
})

test('.gitignore and the tracked files agree: bench/results/latest.json is tracked and not ignored', () => {
  const git = (...args: string[]): string => execFileSync('git', args, { cwd: root, encoding: 'utf8' })
  assert.equal(git('ls-files', '--cached', '--ignored', '--exclude-standard'), '', 'tracked files that .gitignore ignores')
  assert.equal(git('ls-files', 'bench/results/latest.json').trim(), 'bench/results/latest.json')
  // Other results stay local: check-ignore prints the path when it is ignored (and exits 0).
  assert.equal(git('check-ignore', '--no-index', 'bench/results/load.json').trim(), 'bench/results/load.json')
})
