/**
 * The image's HEALTHCHECK: `node dist/src/cli/healthcheck.js` exits 0 when the container's process
 * answers its /healthz, 1 otherwise. One image runs the IdP, the example app and the gate, each on its
 * own port, so the port comes from what PID 1 runs (health-target.ts), not from a fixed PORT.
 */
import { readFileSync } from 'node:fs'
import { healthUrl } from './health-target.js'

let cmdline: string[] = []
try {
  cmdline = readFileSync('/proc/1/cmdline', 'utf8').split('\0').filter((a) => a !== '')
} catch {
  // No /proc (not Linux): ask the IdP's port, as the check did before the gate had one.
}

try {
  // Under the HEALTHCHECK's 3 s timeout, so a hung server is reported by this exit code, not a kill.
  const res = await fetch(healthUrl(cmdline, process.env), { signal: AbortSignal.timeout(2500) })
  // process.exit rather than exitCode: a kept-alive socket would hold the process open for seconds.
  process.exit(res.ok ? 0 : 1)
} catch {
  process.exit(1)
}
