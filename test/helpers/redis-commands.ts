/** The commands clients send to a test Redis while something runs, seen through MONITOR. */
import type { TestRedis } from './redis-server.js'

/**
 * The names (lower case) of the commands every client sent to `redis` while `during` ran, in order.
 * A script's own calls come from "lua" and are left out: they are not round trips.
 */
export async function commandsSent(redis: TestRedis, during: () => Promise<void>): Promise<string[]> {
  const monitor = await redis.client().monitor()
  const marker = redis.client()
  const seen: string[] = []
  // Counting runs from the start marker to the end marker, as MONITOR shows them: MONITOR's feed
  // and a command's reply travel on two connections, so a command answered before the listener
  // was attached (the marker client's own ready check) may still be shown after it.
  let counting = false
  let started: (() => void) | undefined
  let marked: (() => void) | undefined
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') return
    if (String(args[0]).toLowerCase() === 'echo') {
      if (args[1] === 'start') { counting = true; started?.() } else marked?.()
    } else if (counting) seen.push(String(args[0]).toLowerCase())
  })
  await new Promise<void>((done) => { started = done; void marker.echo('start') })
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
