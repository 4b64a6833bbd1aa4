/** Typed errors: every failure Tessera answers on purpose carries a status and a stable code. */

export type TesseraErrorCode =
  | 'TESSERA_ERR_CONFIG'
  | 'TESSERA_ERR_OPTIONS'
  | 'TESSERA_ERR_BAD_REQUEST'
  | 'TESSERA_ERR_INVALID_TOKEN'
  | 'TESSERA_ERR_CSRF'
  | 'TESSERA_ERR_BAD_CREDENTIALS'
  | 'TESSERA_ERR_UNAUTHENTICATED'
  | 'TESSERA_ERR_NOT_FOUND'
  | 'TESSERA_ERR_STORE_UNAVAILABLE'
  | 'TESSERA_ERR_FORWARD_AUTH'
  | 'TESSERA_ERR_INTERNAL'

export class TesseraError extends Error {
  /** Safe to show the client: the message is written for them and says nothing internal. */
  readonly expose: boolean
  /** For logs only, never serialised to a client. */
  readonly detail: string | undefined

  constructor(
    readonly code: TesseraErrorCode,
    readonly statusCode: number,
    message: string,
    opts: { detail?: string; cause?: unknown; expose?: boolean } = {},
  ) {
    super(message, { cause: opts.cause })
    this.name = new.target.name
    this.expose = opts.expose ?? statusCode < 500
    this.detail = opts.detail
  }
}

/** A bad start-up environment: every problem at once, one per line, each naming its variable. */
export class ConfigError extends TesseraError {
  constructor(readonly problems: readonly string[]) {
    super('TESSERA_ERR_CONFIG', 500, `Invalid configuration: ${problems.join('; ')}`, { expose: false })
  }
}

/** Bad options given to the remote plugin; makes `app.ready()` reject. */
export class OptionsError extends TesseraError {
  constructor(readonly problems: readonly string[]) {
    super('TESSERA_ERR_OPTIONS', 500, `tessera/remote: invalid options: ${problems.join('; ')}`, { expose: false })
  }
}

export class BadRequestError extends TesseraError {
  constructor(message: string, detail?: string) {
    super('TESSERA_ERR_BAD_REQUEST', 400, message, { detail })
  }
}

export class InvalidTokenError extends TesseraError {
  constructor(detail?: string, cause?: unknown) {
    // One message for every failure: a caller must not learn *why* a token failed (jose does the same).
    super('TESSERA_ERR_INVALID_TOKEN', 403, 'This sign-in link is invalid or has expired.', { detail, cause })
  }
}

export class CsrfError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_CSRF', 403, 'The form has expired. Please try again.', { detail })
  }
}

/** A state-changing request the browser itself marked as sent by another site (Origin, Sec-Fetch-Site). */
export class CrossSiteError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_CSRF', 403, 'This form was sent from another site, so it was refused. Nothing was changed.', { detail })
  }
}

export class BadCredentialsError extends TesseraError {
  constructor(detail?: string) {
    // Unknown user, wrong password and throttled attempts share this message (no user enumeration).
    super('TESSERA_ERR_BAD_CREDENTIALS', 401, 'Incorrect username or password.', { detail })
  }
}

export class UnauthenticatedError extends TesseraError {
  constructor() {
    super('TESSERA_ERR_UNAUTHENTICATED', 401, 'Sign-in required.')
  }
}

export class NotFoundError extends TesseraError {
  constructor() {
    super('TESSERA_ERR_NOT_FOUND', 404, 'Not found.')
  }
}

/** Redis could not be reached: fail closed with 503, never open. */
export class StoreUnavailableError extends TesseraError {
  constructor(cause?: unknown) {
    super('TESSERA_ERR_STORE_UNAVAILABLE', 503, 'The service is temporarily unavailable. Please try again shortly.', {
      cause,
      expose: true,
      detail: cause instanceof Error ? cause.message : undefined,
    })
  }
}

/**
 * A forward-auth request the gate cannot answer for: not from a trusted proxy, or about a host it does
 * not protect, or with headers that do not say what the original request was. 403, since nginx turns
 * any other refusal of an auth subrequest into a 500.
 */
export class ForwardAuthError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_FORWARD_AUTH', 403, 'This request cannot be authorized.', { detail })
  }
}
