/** Typed errors: every failure Tessera answers on purpose carries a status and a stable code. */

export type TesseraErrorCode =
  | 'TESSERA_ERR_CONFIG'
  | 'TESSERA_ERR_OPTIONS'
  | 'TESSERA_ERR_BAD_REQUEST'
  | 'TESSERA_ERR_INVALID_TOKEN'
  | 'TESSERA_ERR_CSRF'
  | 'TESSERA_ERR_BAD_CREDENTIALS'
  | 'TESSERA_ERR_UNAUTHENTICATED'
  | 'TESSERA_ERR_SECOND_FACTOR_REQUIRED'
  | 'TESSERA_ERR_NOT_FOUND'
  | 'TESSERA_ERR_UNKNOWN_SESSION'
  | 'TESSERA_ERR_STORE_UNAVAILABLE'
  | 'TESSERA_ERR_FORWARD_AUTH'
  | 'TESSERA_ERR_INTERNAL'
  | 'TESSERA_ERR_BAD_SECOND_FACTOR'
  | 'TESSERA_ERR_SIGN_IN_EXPIRED'
  | 'TESSERA_ERR_FACTOR_UNAVAILABLE'
  | 'TESSERA_ERR_FACTOR_REQUIRED'
  | 'TESSERA_ERR_REAUTH_REQUIRED'
  | 'TESSERA_ERR_PASSKEY'

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

/**
 * An app that requires a second factor got a session without one back from the IdP, even though it
 * asked for one (`mfa=1`): refused, not sent back again, so an IdP that cannot step up causes no loop.
 */
export class SecondFactorRequiredError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_SECOND_FACTOR_REQUIRED', 403, 'This app needs a second factor (a passkey or a one-time code), and this sign-in has none.', { detail })
  }
}

export class NotFoundError extends TesseraError {
  constructor() {
    super('TESSERA_ERR_NOT_FOUND', 404, 'Not found.')
  }
}

/** A session to end, named by a fingerprint that is none of the signed-in user's live sessions. */
export class UnknownSessionError extends TesseraError {
  constructor(detail?: string) {
    // One answer for "ended already", "never existed" and "someone else's": the page must not tell them apart.
    super('TESSERA_ERR_UNKNOWN_SESSION', 404, 'That session is not one of your active sessions. It may have ended already.', { detail })
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

export class BadSecondFactorError extends TesseraError {
  constructor(detail?: string) {
    // Wrong, replayed, already used and throttled codes share this message, as passwords do.
    super('TESSERA_ERR_BAD_SECOND_FACTOR', 401, 'Incorrect or already used code.', { detail })
  }
}

/** The sign-in between password and second factor is gone (5 minutes passed, used, or another browser). */
export class SignInExpiredError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_SIGN_IN_EXPIRED', 400, 'This sign-in has expired. Please sign in again.', { detail })
  }
}

/** The second factor asked for cannot be offered: SECOND_FACTOR=off, or no FACTOR_KEYS to seal secrets with. */
export class FactorUnavailableError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_FACTOR_UNAVAILABLE', 409, 'This sign-in service does not offer authenticator-app codes. Ask its administrator.', { detail })
  }
}

/** Removing this factor would leave a user whom policy requires a second factor with none. */
export class FactorRequiredError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_FACTOR_REQUIRED', 409, 'A second factor is required for your account, so your last one cannot be removed. Add another first.', { detail })
  }
}

/** A change to the user's factors without the password typed again in the last 5 minutes. */
export class ReauthRequiredError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_REAUTH_REQUIRED', 403, 'Please confirm your password again before changing your security settings.', { detail })
  }
}

/**
 * A passkey ceremony that did not verify: no or a used challenge, wrong origin or RP ID, unknown or
 * removed credential, bad signature, sign counter gone back, user not verified. One message for all
 * (the reason goes in `detail`), as for passwords.
 */
export class PasskeyError extends TesseraError {
  constructor(detail?: string) {
    super('TESSERA_ERR_PASSKEY', 401, 'That passkey could not be used. Please try again.', { detail })
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
