import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { symbolizeCallgrind } from '../../bench/lib/jit-symbols.js'

test('a callgrind dump gets V8\'s names for the JIT addresses that start a function, and keeps everything else', () => {
  const dir = mkdtempSync(join(tmpdir(), 'jit-symbols-'))
  const dump = join(dir, 'callgrind.out')
  const map = join(dir, 'perf.map')
  const out = join(dir, 'named.cg')
  writeFileSync(map, [
    '281874c0 1a0 JS:*decide file:///app/dist/src/remote/core.js:38:17',
    '280a5900 40 RegExp.> src: \'^v1\' flags: \'\'',
    '',
  ].join('\n'))
  writeFileSync(dump, [
    'events: Ir',
    'fn=(1) 0x00000000281874c0',
    '0 120',
    'cfn=(2) 0x00000000280a5900',
    'calls=1 0',
    '0 30',
    'fn=(3) 0x00000000281874c8', // inside decide, not its start: left as it is
    '0 5',
    'fn=(4) Builtins_StringAdd_CheckNone',
    '0 7',
    'summary: 162',
  ].join('\n'))
  assert.equal(symbolizeCallgrind(dump, map, out), 2)
  assert.deepEqual(readFileSync(out, 'utf8').split('\n'), [
    'events: Ir',
    'fn=(1) JS:*decide_file:///app/dist/src/remote/core.js:38:17',
    '0 120',
    'cfn=(2) RegExp.>_src:_\'^v1\'_flags:_\'\'',
    'calls=1 0',
    '0 30',
    'fn=(3) 0x00000000281874c8',
    '0 5',
    'fn=(4) Builtins_StringAdd_CheckNone',
    '0 7',
    'summary: 162',
  ])
})
