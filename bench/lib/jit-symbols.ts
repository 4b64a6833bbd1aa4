/**
 * Names for JIT code in a callgrind dump. Callgrind names a function it has no symbol for by its
 * start address (`0x00000000281874c0`); V8 run with `--perf-basic-prof` writes `/tmp/perf-<pid>.map`
 * (`start size name` per line) and keeps code where it was compiled, so each such address that starts
 * a JavaScript function, a builtin or a regular expression gets its name back. The rewritten dump
 * reads with `callgrind_annotate --inclusive=yes` as an instruction profile by JavaScript function.
 */
import { readFileSync, writeFileSync } from 'node:fs'

const ADDRESS = /0x([0-9a-f]{16})/g

/** Writes `dump` to `out` with every JIT address that starts a function in `perfMap` named; returns how many names were found. */
export function symbolizeCallgrind(dump: string, perfMap: string, out: string): number {
  const names = new Map<number, string>()
  for (const line of readFileSync(perfMap, 'utf8').split('\n')) {
    const [start, , ...name] = line.split(' ')
    // callgrind_annotate reads a name up to its first space.
    if (start !== undefined && name.length > 0) names.set(Number.parseInt(start, 16), name.join('_').slice(0, 160))
  }
  let found = 0
  const lines = readFileSync(dump, 'utf8').split('\n').map((line) => {
    if (!line.startsWith('fn=') && !line.startsWith('cfn=')) return line
    return line.replace(ADDRESS, (address, hex: string) => {
      const name = names.get(Number.parseInt(hex, 16))
      if (name === undefined) return address
      found++
      return name
    })
  })
  writeFileSync(out, lines.join('\n'))
  return found
}
