/**
 * Summarises a V8 .cpuprofile (from `BENCH_PROFILE=idp,app npm run bench`, or `node --cpu-prof`):
 * self time by function, by package / source area, and inclusive time of the functions that matter.
 *
 *   node dist/bench/profile.js /tmp/tessera-bench-…/profiles/idp.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs'

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface Node { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: Node[]; samples: number[]; timeDeltas: number[] }

const file = process.argv[2]
if (file === undefined) {
  process.stderr.write('usage: node dist/bench/profile.js FILE.cpuprofile [TOP]\n')
  process.exit(2)
}
const top = Number(process.argv[3] ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map(profile.nodes.map((n) => [n.id, n]))
const parent = new Map<number, number>()
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)

const selfUs = new Map<number, number>()
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
const idleIds = new Set(profile.nodes.filter((n) => ['(idle)', '(program)'].includes(n.callFrame.functionName)).map((n) => n.id))
const busy = total - [...idleIds].reduce((a, id) => a + (selfUs.get(id) ?? 0), 0)

function area(url: string): string {
  if (url === '') return '(native / V8)'
  if (url.startsWith('node:')) return url.split('/')[0] as string
  const nm = url.lastIndexOf('/node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1]}` : rest[0] as string
  }
  const m = /\/(src|bench|examples)\/(.*)$/.exec(url)
  return m === null ? url : `${m[1]}/${m[2]}`
}
const label = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${area(f.url)}:${f.lineNumber + 1}`

const pct = (us: number): string => `${((100 * us) / busy).toFixed(1).padStart(5)}%`
const print = (title: string, entries: [string, number][]): void => {
  process.stdout.write(`\n${title}\n`)
  for (const [k, us] of entries.sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(us)}  ${k}\n`)
}

process.stdout.write(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (percentages of busy time)\n`)

const selfByFn = new Map<string, number>()
const selfByArea = new Map<string, number>()
const inclusive = new Map<string, number>()
for (const [id, us] of selfUs) {
  if (idleIds.has(id)) continue
  const node = byId.get(id) as Node
  const key = label(node.callFrame)
  selfByFn.set(key, (selfByFn.get(key) ?? 0) + us)
  const a = node.callFrame.functionName.startsWith('(') ? node.callFrame.functionName : area(node.callFrame.url)
  selfByArea.set(a, (selfByArea.get(a) ?? 0) + us)
  // Inclusive: charge each distinct frame on the stack once.
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = label((byId.get(cur) as Node).callFrame)
    if (seen.has(k)) continue
    seen.add(k)
    inclusive.set(k, (inclusive.get(k) ?? 0) + us)
  }
}
print('self time by package / source file', [...selfByArea])
print('self time by function', [...selfByFn])
print('inclusive time (project code and its direct dependencies)', [...inclusive].filter(([k]) => /(src|bench)\/|@fastify|fastify |ioredis|pino|undici|node:crypto|node:http/.test(k)))
