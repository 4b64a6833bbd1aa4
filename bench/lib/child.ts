/**
 * The child side of a bench server: reads its config, starts, answers CPU/RSS questions over IPC
 * (so no bench-only route is added to the servers under test) and stops when told.
 */
import { readFileSync } from 'node:fs'
import type { ChildConfig, FromChild, ToChild } from './common.js'

export interface Running {
  close(): Promise<void>
}

export function childConfig<T extends ChildConfig>(): T {
  const raw = process.env.BENCH_CHILD
  if (raw === undefined) throw new Error('BENCH_CHILD is not set: this file is started by bench/run.js')
  return JSON.parse(raw) as T
}

/**
 * The resident pages mapped from files (the node binary and shared libraries, shared with every
 * other Node process), from /proc/self/status; NaN where there is no /proc.
 */
function rssFileBytes(): number {
  try {
    const kb = /^RssFile:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]
    return kb === undefined ? NaN : Number(kb) * 1024
  } catch {
    return NaN
  }
}

export function runChild(start: () => Promise<Running>): void {
  const send = (msg: FromChild): void => { process.send?.(msg) }
  let running: Running | undefined
  process.on('message', (msg: ToChild) => {
    if (msg.type === 'stats') {
      const cpu = process.cpuUsage()
      const mem = process.memoryUsage()
      send({ type: 'stats', id: msg.id, cpuUs: cpu.user + cpu.system, rss: mem.rss, heapTotal: mem.heapTotal, heapUsed: mem.heapUsed, external: mem.external, rssFile: rssFileBytes() })
    } else if (msg.type === 'stop') {
      const done = (): never => process.exit(0) // a normal exit, so --cpu-prof writes its profile
      void (running?.close() ?? Promise.resolve()).then(done, done)
    }
  })
  // The driver went away (crashed or killed): do not linger.
  process.on('disconnect', () => process.exit(1))
  start().then((r) => { running = r; send({ type: 'ready' }) }, (err: Error) => {
    send({ type: 'failed', message: err.stack ?? err.message })
    process.exit(1)
  })
}
