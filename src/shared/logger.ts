/** pino options for both sides: secrets are redacted by name, and URLs are logged without their query. */
import { stdSerializers, symbols, type Logger, type LoggerOptions } from 'pino'

/** pino's levels, the values LOG_LEVEL may take (the IdP, the gate). */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const SECRET_FIELDS = ['token', 'password', 'csrf', 'state', 'callback', 'sessionId', 'cookie', 'authorization']
const CENSOR = '[redacted]'
// A secret field's name as a key in serialized bindings, at any depth.
const NAMES_A_SECRET = new RegExp(`"(?:${SECRET_FIELDS.join('|')})":`)

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    // Top-level names and exact paths through pino's own redaction. One level down (`*.token`) is
    // done by `censorNested` instead: pino runs wildcard-first paths over every child logger's
    // bindings when the child is made, and Fastify makes one per request, logged or not (about 7% of
    // a page view's instructions at `warn`, bench/README.md issue 17). The log formatter runs only on
    // what is written; a child's bindings are looked at once, and rebuilt only when they name a secret.
    redact: {
      paths: ['req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]', ...SECRET_FIELDS],
      censor: CENSOR,
    },
    formatters: { log: censorNested, bindings: censorNested },
    onChild: censorChildBindings,
    serializers: {
      // Fastify's default logs req.url with its query; callbacks and tokens travel in the query.
      req: (req: { method: string; url: string; ip?: string; id?: string }) =>
        ({ method: req.method, path: pathOnly(req.url), ip: req.ip }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
      err: errWithoutClientStack,
    },
  }
}

/**
 * `obj` with every secret field one level down censored (`{ user: { password } }`), copied where it
 * changes: the caller's objects are never modified. Own properties only, so a prototype's methods
 * (a Fastify reply's `cookie()`) are left alone; a copy keeps the original's prototype and every own
 * property, enumerable or not, so an error stays an error with its message and stack.
 */
function censorNested(obj: Record<string, unknown>): Record<string, unknown> {
  let out: Record<string, unknown> | undefined
  for (const key in obj) {
    const value = obj[key]
    if (value === null || typeof value !== 'object' || Array.isArray(value)) continue
    let descriptors: PropertyDescriptorMap | undefined
    for (const field of SECRET_FIELDS) {
      if (!Object.hasOwn(value, field)) continue
      descriptors ??= ownValues(value)
      descriptors[field] = { value: CENSOR, enumerable: true, writable: true, configurable: true }
    }
    if (descriptors !== undefined) {
      out ??= { ...obj }
      out[key] = Object.create(Object.getPrototypeOf(value) as object | null, descriptors)
    }
  }
  return out ?? obj
}

/** `value`'s own properties as plain values: an accessor (an error's `stack`) read on the original, where it works. */
function ownValues(value: object): PropertyDescriptorMap {
  const descriptors = Object.getOwnPropertyDescriptors(value)
  for (const [key, d] of Object.entries(descriptors)) {
    if (d.get !== undefined) descriptors[key] = { value: (value as Record<string, unknown>)[key], enumerable: d.enumerable ?? false, writable: true, configurable: true }
  }
  return descriptors
}

/** A child logger's bindings (pino keeps them serialized) with `censorNested` applied, if they name a secret. */
function censorChildBindings(child: Logger): void {
  const own = child as unknown as Record<symbol, string>
  const serialized = own[symbols.chindingsSym] as string
  // Fastify's per-request bindings are flat (`,"reqId":"req-1"`): no object, nothing one level down.
  if (!serialized.includes('{') || !NAMES_A_SECRET.test(serialized)) return
  const bindings = censorNested(JSON.parse(`{${serialized.slice(1)}}`) as Record<string, unknown>)
  own[symbols.chindingsSym] = `,${JSON.stringify(bindings).slice(1, -1)}`
}

/**
 * pino's error serializer, without the stack of a client's error (a 4xx such as Fastify's bad JSON or
 * body too large, which Fastify logs at info): it points into the framework, never at a bug.
 */
function errWithoutClientStack(err: Error & { statusCode?: unknown }): object {
  const out = stdSerializers.err(err) as { stack?: string }
  if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) delete out.stack
  return out
}

function pathOnly(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}
