/** Which local URL the image's HEALTHCHECK asks: the gate's when the container runs `tessera gate`, else the IdP's (or the example app's). */

/**
 * `cmdline` is the container's PID 1 command line (/proc/1/cmdline, split at NULs): `node
 * dist/src/server.js`, `node dist/examples/app-server.js`, `node /usr/local/bin/tessera gate`, or a
 * wrapper that carries those words (`docker-init -- tessera gate`, `npm exec tessera gate`, `sh -c
 * 'tessera gate'`). Only the gate has the word `gate` in it. Each process is asked on the port and
 * address it listens on: PORT and HOST for the IdP and the app, GATE_PORT and GATE_HOST for the gate.
 */
export function healthUrl(cmdline: readonly string[], env: Readonly<Record<string, string | undefined>>): string {
  const gate = cmdline.slice(1).some((arg) => arg.split(/\s+/).includes('gate'))
  const port = (gate ? env.GATE_PORT : env.PORT) ?? (gate ? '9091' : '3000')
  return `http://${askAt(gate ? env.GATE_HOST : env.HOST)}:${port}/healthz`
}

/** A wildcard address (or none) is asked on loopback; a specific one as it is, an IPv6 literal in brackets. */
function askAt(host: string | undefined): string {
  if (host === undefined || host === '' || host === '0.0.0.0' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}
