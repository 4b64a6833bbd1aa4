/** The driver's side of a bench server: one child process per server, asked for its CPU and RSS over IPC. */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { openSync, closeSync } from 'node:fs'
import type { ChildConfig, FromChild, ToChild } from './common.js'

export interface ChildStats {
  /** User + system CPU time of the child so far, in ms. */
  readonly cpuMs: number
  readonly rssMb: number
  /** V8 heap reserved / used and memory outside it (Buffers, native), MB. */
  readonly heapTotalMb: number
  /** Of rssMb, the pages mapped from files (the node binary, shared libraries). */
  readonly rssFileMb: number
  readonly heapUsedMb: number
  readonly externalMb: number
}

const MB = 1048576

export class ServerProcess {
  readonly #child: ChildProcess
  readonly #waiting = new Map<number, (s: ChildStats) => void>()
  #nextId = 1
  readonly ready: Promise<void>
  readonly url: string

  get pid(): number | undefined {
    return this.#child.pid
  }

  /**
   * `execPath` runs the child under another program (valgrind for bench/instructions.ts), `execArgv`
   * being that program's arguments, then node's path and flags.
   */
  constructor(readonly name: string, script: URL, config: ChildConfig, opts: { logFile: string; execArgv?: string[]; execPath?: string }) {
    this.url = `http://${config.host}:${config.port}`
    const log = openSync(opts.logFile, 'a')
    this.#child = fork(fileURLToPath(script), [], {
      env: { ...process.env, BENCH_CHILD: JSON.stringify(config), NODE_ENV: 'production' },
      stdio: ['ignore', log, log, 'ipc'],
      execArgv: opts.execArgv ?? [],
      ...(opts.execPath === undefined ? {} : { execPath: opts.execPath }),
    })
    closeSync(log)
    this.ready = new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`${name} exited (${code}) before it was ready; see ${opts.logFile}`))
      this.#child.once('exit', onExit)
      this.#child.on('message', (msg: FromChild) => {
        if (msg.type === 'ready') { this.#child.off('exit', onExit); resolve() }
        else if (msg.type === 'failed') reject(new Error(`${name} failed to start: ${msg.message}`))
        else if (msg.type === 'stats') {
          this.#waiting.get(msg.id)?.({
            cpuMs: msg.cpuUs / 1000, rssMb: msg.rss / MB, heapTotalMb: msg.heapTotal / MB, rssFileMb: msg.rssFile / MB, heapUsedMb: msg.heapUsed / MB, externalMb: msg.external / MB,
          })
          this.#waiting.delete(msg.id)
        }
      })
    })
  }

  stats(): Promise<ChildStats> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, resolve)
      this.#send({ type: 'stats', id })
      setTimeout(() => { if (this.#waiting.delete(id)) reject(new Error(`${this.name}: no stats answer`)) }, 5000).unref()
    })
  }

  /** Asks the child to close and exit (so a --cpu-prof profile is written); kills it after 5 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()))
    try { this.#send({ type: 'stop' }) } catch { /* already gone */ }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  #send(msg: ToChild): void {
    this.#child.send(msg)
  }
}
