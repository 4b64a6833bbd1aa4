/** The environment a CLI command sees: `.env` in the working directory, overridden by real variables, as `npm start` does. */
import { readDotenv } from '../idp/config.js'

export function environment(): Record<string, string | undefined> {
  return { ...readDotenv(true), ...process.env }
}

export const EXIT = { ok: 0, problem: 1, usage: 2, redis: 3 } as const
