/**
 * CSRF tokens for the IdP's forms: an HMAC of a cookie value the form is bound to (the pre-login
 * cookie for the login form, the session cookie for logout), the signed double-submit pattern of
 * the OWASP CSRF cheat sheet. Nothing is stored, so anonymous visitors cost no Redis write.
 */
import { hmac, safeEqual } from '../shared/crypto.js'

export type CsrfPurpose = 'login' | 'logout' | 'security' | 'second-factor' | 'sessions'

export function csrfToken(secret: string, purpose: CsrfPurpose, boundTo: string): string {
  return hmac(secret, `csrf|${purpose}|${boundTo}`)
}

export function isValidCsrf(secret: string, purpose: CsrfPurpose, boundTo: string | undefined, given: unknown): boolean {
  return typeof boundTo === 'string' && boundTo !== '' && typeof given === 'string' &&
    safeEqual(given, csrfToken(secret, purpose, boundTo))
}
