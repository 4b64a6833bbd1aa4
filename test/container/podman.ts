/**
 * Debian's podman, as root, set up the way this kind of machine needs it (see docs/deploy.md, "The
 * container in CI"): every podman and podman-compose call of the container tests goes through here,
 * with a containers.conf of the tests' own (CONTAINERS_CONF) instead of edits to /etc.
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * - runc: crun refuses this kernel's hybrid cgroup v1/v2 layout; cgroupfs: no systemd to ask.
 * - default ulimits no higher than the machine's hard limits, or every container fails to start.
 * - events to a file: there is no journald.
 */
function containersConf(): string {
  // This process's hard limits, as /proc/self/limits states them (`Max open files  1024  20000  files`).
  const limits = readFileSync('/proc/self/limits', 'utf8')
  const hard = (name: string): number => {
    const value = new RegExp(`^${name}\\s+\\S+\\s+(\\S+)`, 'm').exec(limits)?.[1]
    return value === undefined || value === 'unlimited' ? Infinity : Number(value)
  }
  const nofile = Math.min(hard('Max open files'), 1_048_576)
  const nproc = Math.min(hard('Max processes'), 32_768)
  const dir = mkdtempSync(join(tmpdir(), 'tessera-podman-'))
  const file = join(dir, 'containers.conf')
  writeFileSync(file, [
    '[containers]',
    `default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]`,
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    '',
  ].join('\n'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  return file
}

export const podmanEnv: NodeJS.ProcessEnv = { ...process.env, CONTAINERS_CONF: containersConf() }

export interface Run {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

/** Runs `cmd args` with the tests' podman settings; never rejects (look at `code`). */
export function exec(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: podmanEnv, cwd: opts.cwd, timeout: opts.timeoutMs ?? 600_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1
        resolve({ stdout, stderr, code })
      })
  })
}

/** Runs podman; rejects with the command and the end of its output when it fails. */
export async function podman(args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<string> {
  return check('podman', args, await exec('podman', args, opts))
}

export async function podmanCompose(args: readonly string[], opts: { cwd?: string } = {}): Promise<string> {
  return check('podman-compose', args, await exec('podman-compose', args, opts))
}

/** Compose waits 10 s and Kubernetes 30 s before SIGKILL; a process must stop well within that. */
export const STOP_DEADLINE_MS = 3000

/**
 * `podman stop` (SIGTERM, then SIGKILL after 10 s, as compose does), asserting that the process
 * exited by itself with code 0 within the deadline.
 */
export async function stopWithinDeadline(name: string): Promise<void> {
  const t0 = Date.now()
  await podman(['stop', '--time', '10', name])
  const returned = Date.now() - t0
  const [exitCode, finishedAt] = (await podman(['inspect', '--format', '{{.State.ExitCode}} {{.State.FinishedAt.UnixMilli}}', name])).trim().split(' ').map(Number)
  // From the stop command to the process's exit, as the engine recorded it (`podman stop` returns
  // after its own clean-up as well).
  const ms = (finishedAt as number) - t0
  process.stdout.write(`${name} stopped in ${ms} ms (podman stop returned after ${returned} ms), exit code ${exitCode}\n`)
  assert.equal(exitCode, 0, `${name}: exit code`)
  assert.ok(ms < STOP_DEADLINE_MS, `${name} took ${ms} ms to stop`)
}

function check(cmd: string, args: readonly string[], run: Run): string {
  if (run.code !== 0) {
    const tail = (s: string): string => s.split('\n').slice(-25).join('\n')
    throw new Error(`${cmd} ${args.join(' ')} exited ${run.code}\n--- stdout ---\n${tail(run.stdout)}\n--- stderr ---\n${tail(run.stderr)}`)
  }
  return run.stdout
}

/**
 * Why the container tests cannot run here, or undefined when they can. Only a machine where podman
 * cannot run at all skips them; under CI (CI set) nothing is skipped, so a broken set-up fails.
 */
export function whyNoPodman(): string | undefined {
  const missing = ['podman', 'podman-compose', 'debootstrap', 'runc'].filter((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status !== 0)
  let reason: string | undefined
  if (missing.length > 0) reason = `not installed: ${missing.join(', ')} (apt-get install podman podman-compose debootstrap runc)`
  else if (process.getuid?.() !== 0) reason = 'podman must run as root here (rootless podman needs subuid ranges this machine does not set up)'
  else {
    const info = spawnSync('podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}'], { env: podmanEnv, encoding: 'utf8' })
    if (info.status !== 0) reason = `podman cannot run: ${info.stderr.trim().split('\n').at(-1) ?? ''}`
  }
  if (reason !== undefined && process.env.CI !== undefined && process.env.CI !== '') {
    throw new Error(`container tests cannot run under CI: ${reason}`)
  }
  return reason
}
