/** pino options for both sides: secrets are redacted by path, and URLs are logged without their query. */
import type { LoggerOptions } from 'pino'

const SECRET_FIELDS = ['token', 'password', 'csrf', 'state', 'callback', 'sessionId', 'cookie', 'authorization']

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      // `*.x` only matches one level down, so top-level names are listed too.
      paths: [
        'req.headers.cookie', 'req.headers.authorization', 'res.headers["set-cookie"]',
        ...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`),
      ],
      censor: '[redacted]',
    },
    serializers: {
      // Fastify's default logs req.url with its query; callbacks and tokens travel in the query.
      req: (req: { method: string; url: string; ip?: string; id?: string }) =>
        ({ method: req.method, path: pathOnly(req.url), ip: req.ip }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  }
}

function pathOnly(url: string): string {
  const q = url.indexOf('?')
  return q < 0 ? url : url.slice(0, q)
}
