/**
 * A process with a DNS resolver of the test's own: a name server on UDP port 53 of a loopback address,
 * named in a resolv.conf that the process sees as /etc/resolv.conf (a bind mount in a mount namespace
 * of its own). Only root can do both: CI runs as root; elsewhere the tests that need it are skipped.
 */
import { after } from 'node:test'
import { spawnSync } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { randomInt } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The `skip` option of a test that needs its own resolver: the reason, or false where it can run. */
export const ownResolverSkip: string | false = process.getuid?.() !== 0
  ? 'needs root: a mount namespace (unshare -m) for a process\'s own /etc/resolv.conf, and UDP port 53 for its name server'
  : spawnSync('unshare', ['-m', 'true']).status !== 0 ? 'unshare -m is not available here (no CAP_SYS_ADMIN?)' : false

/** A UDP socket bound to port 53 of a loopback address of its own (127.0.0.53 may be systemd-resolved's), closed after the file. */
export async function nameServerSocket(): Promise<{ socket: Socket; address: string }> {
  const socket = createSocket('udp4')
  const address = `127.${randomInt(1, 255)}.${randomInt(1, 255)}.53`
  await new Promise<void>((resolve, reject) => { socket.once('error', reject); socket.bind(53, address, resolve) })
  after(() => { socket.close() })
  return { socket, address }
}

/** A resolv.conf with `text` in a temporary directory, removed after the file. Returns its path. */
export function resolvConfFile(text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-resolver-'))
  after(() => { rmSync(dir, { recursive: true, force: true }) })
  const path = join(dir, 'resolv.conf')
  writeFileSync(path, text)
  return path
}

/** The command and arguments that run `command args…` as the same process (sh and unshare exec it), with `resolvConf` as its /etc/resolv.conf. */
export function withResolvConf(resolvConf: string, command: string, args: readonly string[]): [string, string[]] {
  return ['unshare', ['-m', 'sh', '-c', 'mount --bind "$0" /etc/resolv.conf && exec "$@"', resolvConf, command, ...args]]
}
