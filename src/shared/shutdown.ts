/**
 * How a Tessera process (the IdP, an app) stops on SIGTERM/SIGINT: at once, whatever Redis is doing.
 * Container engines and Kubernetes send SIGTERM and kill a few seconds later; a process still busy
 * then loses its requests in flight and looks crashed.
 */
import type { FastifyInstance } from 'fastify'

/**
 * Requests in flight get this long to finish. Longer than a Redis operation may take (inStore's
 * COMMAND_TIMEOUT_MS, 2 s), shorter than any supervisor's grace period (compose 10 s, Kubernetes 30 s).
 */
export const STOP_GRACE_MS = 2500

const SIGNALS = ['SIGTERM', 'SIGINT'] as const
const exitNow = (): void => process.exit(0)

/**
 * For an entry point's first lines, before it imports the rest (a few hundred ms): a signal while the
 * process loads ends it at once, as nothing is in flight yet. In a container the process is PID 1,
 * where a signal without a handler is ignored, and the stop would wait for SIGKILL.
 */
export function exitOnSignalsWhileLoading(): void {
  for (const signal of SIGNALS) process.once(signal, exitNow)
}

/**
 * Installs the SIGTERM and SIGINT handlers that stop `app`, in place of exitOnSignalsWhileLoading's;
 * call it before `listen`, which may wait for Redis, so that a stop then is not ignored either.
 */
export function stopOnSignals(app: FastifyInstance, graceMs = STOP_GRACE_MS): void {
  for (const signal of SIGNALS) {
    process.once(signal, () => {
      app.log.info({ signal }, 'shutting down')
      // Not listening yet (still waiting for Redis): no request can be in flight.
      if (!app.server.listening) process.exit(0)
      stop(app, graceMs).then((clean) => process.exit(clean ? 0 : 1), () => process.exit(1))
    })
    // Only now, with the new handler in place: removing a signal's last listener closes Node's
    // watcher for it, and a signal that came during the synchronous start-up (the users file being
    // read), not yet delivered, was lost with it; the process then ran on as if never told to stop.
    process.off(signal, exitNow)
  }
}

/**
 * Stops listening and lets requests in flight finish; true when everything closed within `graceMs`.
 * Fastify closes the connections that are idle when close() starts, but a connection answering a
 * request then stays open after its answer for the keep-alive timeout (72 s): so idle connections are
 * closed again until none are left. At the deadline the rest are cut.
 */
async function stop(app: FastifyInstance, graceMs: number): Promise<boolean> {
  const server = app.server
  const sweep = setInterval(() => { server.closeIdleConnections() }, 50)
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      app.log.warn(`requests still in flight ${graceMs} ms after the signal: closing their connections`)
      server.closeAllConnections()
      resolve(false)
    }, graceMs)
  })
  try {
    return await Promise.race([app.close().then(() => true), deadline])
  } finally {
    clearInterval(sweep)
    clearTimeout(timer)
  }
}
