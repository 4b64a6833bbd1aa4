/**
 * What the driver and every bench server agree on: the page, the child-process protocol, the
 * baselines' Redis options. The user
 * (alice, her password, the users file) is the tests' own, from test/helpers/users.ts.
 */
import type { RedisOptions } from 'ioredis'
import { USERNAME } from '../../test/helpers/users.js'
import { COMMAND_TIMEOUT_MS, REDIS_OPTIONS } from '../../src/shared/redis.js'

/** The protected page every system serves: the same bytes, naming the user. */
export const page = (username: string): string =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Private</title></head>` +
  `<body><h1>Private page</h1><p id="who">Signed in as ${escapeHtml(username)}</p></body></html>`

/** What the driver looks for in every final page of a hand-over. */
export const WHO = `<p id="who">Signed in as ${USERNAME}</p>`

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
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
  | { type: 'stats'; id: number; cpuUs: number; rss: number; heapTotal: number; heapUsed: number; external: number; rssFile: number }

/**
 * The baselines' ioredis options: Tessera's client options with ioredis's own 2-s command timeout,
 * which is how a user of those libraries bounds a hung Redis (Tessera bounds it in `inStore`, one
 * timer per process; the baselines have no such wrapper), so each still gives up after 2 s.
 */
export const BASELINE_REDIS_OPTIONS: RedisOptions = { ...REDIS_OPTIONS, commandTimeout: COMMAND_TIMEOUT_MS }
