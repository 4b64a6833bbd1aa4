/** The IdP's cookies: names and attributes follow the public URL (https: Secure and the __Host- prefix). */
import type { CookieSerializeOptions } from '@fastify/cookie'

export interface IdpCookies {
  readonly session: string
  readonly preLogin: string
  /** Marks a browser that has signed in as a user before: it is not held by its address's ban. */
  readonly knownDevice: string
  /** Binds a sign-in between password and second factor to this browser (pending-sign-in.ts). */
  readonly secondFactor: string
  readonly options: CookieSerializeOptions
  readonly preLoginOptions: CookieSerializeOptions
  readonly knownDeviceOptions: CookieSerializeOptions
  readonly secondFactorOptions: CookieSerializeOptions
}

/** How long a login form stays valid: long enough to find a password manager, short enough to expire. */
export const PRE_LOGIN_MAX_AGE_S = 30 * 60

/** Random bytes in the pre-login cookie, which the login form's CSRF token is bound to. */
export const PRE_LOGIN_BYTES = 32

/** How long the second step of a sign-in may take, in seconds (its Redis record lives as long). */
export const SECOND_FACTOR_MAX_AGE_S = 5 * 60

/** How long a browser stays known after its last sign-in. */
export const KNOWN_DEVICE_MAX_AGE_S = 90 * 86_400

export function idpCookies(publicUrl: string): IdpCookies {
  const secure = publicUrl.startsWith('https:')
  // __Host- makes the browser refuse the cookie unless Secure, Path=/ and no Domain: no subdomain can plant it.
  const prefix = secure ? '__Host-' : ''
  const options: CookieSerializeOptions = { path: '/', httpOnly: true, sameSite: 'lax', secure }
  return {
    session: `${prefix}tessera_idp`,
    preLogin: `${prefix}tessera_pre`,
    knownDevice: `${prefix}tessera_device`,
    secondFactor: `${prefix}tessera_2fa`,
    options,
    preLoginOptions: { ...options, maxAge: PRE_LOGIN_MAX_AGE_S },
    knownDeviceOptions: { ...options, maxAge: KNOWN_DEVICE_MAX_AGE_S },
    secondFactorOptions: { ...options, maxAge: SECOND_FACTOR_MAX_AGE_S },
  }
}
