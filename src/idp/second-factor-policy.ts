/**
 * Who must give a second factor, and what the sign-in does about it: plain decisions over plain
 * values (SECOND_FACTOR, SECOND_FACTOR_GROUPS, what the user has enrolled), so they are unit-tested
 * without Redis or HTTP.
 */
import type { AuthMethod } from '../shared/identity.js'
import type { SessionUser } from '../shared/session.js'

export type SecondFactorMode = 'off' | 'optional' | 'required'

export interface SecondFactorPolicy {
  readonly mode: SecondFactorMode
  /** When not empty, a second factor is required for members of these groups only (mode not off). */
  readonly groups: readonly string[]
}

/** What a user has enrolled; recovery codes are a way back in, not a factor of their own. */
export interface EnrolledFactors {
  readonly totp: boolean
  readonly passkeys: number
  readonly recoveryCodes: number
}

/** After the password: sign in at once, ask for an enrolled factor, or lead to enrol one first. */
export type SecondStep = 'none' | 'verify' | 'enrol'

export function isRequiredFor(policy: SecondFactorPolicy, user: Pick<SessionUser, 'groups'>): boolean {
  if (policy.mode === 'off') return false
  if (policy.groups.length > 0) return user.groups.some((g) => policy.groups.includes(g))
  return policy.mode === 'required'
}

export function factorCount(enrolled: EnrolledFactors): number {
  return (enrolled.totp ? 1 : 0) + enrolled.passkeys
}

/**
 * The step after a right password. `stepUp`: an app asked for a second factor (`mfa=1`) whatever
 * the policy says, so a user with none is led to enrol (the caller refuses when mode is off).
 */
export function secondStepFor(policy: SecondFactorPolicy, user: Pick<SessionUser, 'groups'>, enrolled: EnrolledFactors, stepUp = false): SecondStep {
  if (policy.mode === 'off' && !stepUp) return 'none'
  if (factorCount(enrolled) > 0) return 'verify'
  return stepUp || isRequiredFor(policy, user) ? 'enrol' : 'none'
}

/** Removing one factor must not leave a user whom policy requires a second factor with none. */
export function mayRemoveFactor(policy: SecondFactorPolicy, user: Pick<SessionUser, 'groups'>, enrolled: EnrolledFactors): boolean {
  return !isRequiredFor(policy, user) || factorCount(enrolled) > 1
}

/** True when the session's methods include a second factor (a one-time code or a hardware key). */
export function hasSecondFactor(methods: readonly Pick<AuthMethod, 'method'>[]): boolean {
  return methods.some((m) => m.method === 'otp' || m.method === 'hwk')
}

/** Reads SECOND_FACTOR_GROUPS: comma-separated group names, blanks dropped. */
export function parseGroups(raw: string): string[] {
  return [...new Set(raw.split(',').map((s) => s.trim()).filter((s) => s !== ''))]
}
