/** Runs the built `tessera` CLI as its own process, with only the environment given. */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

export const CLI_MAIN = resolve(new URL('../../src/cli/main.js', import.meta.url).pathname)

export interface CliResult { status: number | null; stdout: string; stderr: string }

/** An empty folder to run in, so a developer's .env never leaks into a test. */
export const emptyDir = (): string => mkdtempSync(join(tmpdir(), 'tessera-cli-'))

export function runCli(args: string[], opts: { input?: string; env?: Record<string, string>; cwd: string }): Promise<CliResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { cwd: opts.cwd, env: { PATH: process.env.PATH ?? '', ...opts.env } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    child.on('close', (status) => done({ status, stdout, stderr }))
    child.stdin.end(opts.input ?? '')
  })
}
