/** What the driver and every bench server agree on: the user, the page, the child-process protocol. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const USERNAME = 'alice'
export const DISPLAY_NAME = 'Alice Example'
// Same password and argon2id hash as test/helpers/stack.ts (small costs: sign-in is not timed).
export const PASSWORD = 'correct horse battery staple'
export const PASSWORD_HASH = '$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$RAME85Nb8CxpfIy5Ca0XN5R2weN/7wRhxgF0shgwz70'

/** The protected page every system serves: the same bytes, naming the user. */
export const page = (username: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Private</title></head>` +
  `<body><h1>Private page</h1><p id="who">Signed in as ${escapeHtml(username)}</p></body></html>`

/** What the driver looks for in every final page of a hand-over. */
export const WHO = `<p id="who">Signed in as ${USERNAME}</p>`

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function writeUsersFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-'))
  const file = join(dir, 'users.yml')
  writeFileSync(file, `users:\n  ${USERNAME}:\n    displayname: ${DISPLAY_NAME}\n    email: alice@example.com\n    password: "${PASSWORD_HASH}"\n    groups: [staff]\n`)
  return file
}

/** Configuration handed to each child in the BENCH_CHILD environment variable (JSON). */
export interface ChildConfig {
  readonly host: string
  readonly port: number
  readonly redisUrl: string
  readonly [key: string]: unknown
}

/** Messages over the IPC channel between the driver and a child. */
export type ToChild = { type: 'stats'; id: number } | { type: 'stop' }
export type FromChild =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'stats'; id: number; cpuUs: number; rss: number; heapTotal: number; heapUsed: number; external: number }
