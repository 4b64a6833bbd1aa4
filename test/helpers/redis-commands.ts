/** The commands clients send to a test Redis while something runs, seen through MONITOR. */
import type { TestRedis } from './redis-server.js'

/**
 * The names (lower case) of the commands every client sent to `redis` while `during` ran, in order.
 * A script's own calls come from "lua" and are left out: they are not round trips.
 */
export async function commandsSent(redis: TestRedis, during: () => Promise<void>): Promise<string[]> {
  const monitor = await redis.client().monitor()
  const marker = redis.client()
  await marker.ping() // connected (and its INFO ready check sent) before anything is counted
  const seen: string[] = []
  let marked: (() => void) | undefined
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return
    if (String(args[0]).toLowerCase() === 'echo') marked?.()
    else seen.push(String(args[0]).toLowerCase())
  })
  try {
    await during()
    // A marker sent after the work: once MONITOR shows it, every command before it has arrived.
    await new Promise<void>((done) => { marked = done; void marker.echo('mark') })
    return seen
  } finally {
    monitor.disconnect()
    marker.disconnect()
  }
}
