/** A signed-in user's Redis records as the bench measures them, made through the store modules. */
import { randomId } from '../../src/shared/crypto.js'
import type { Handle, SessionLimits, SessionUser } from '../../src/shared/session.js'
import { PWD, type storesFor } from '../../test/helpers/stores.js'

/**
 * A session created at `idp` (the IdP's handle), one handle per app in `apps` by a real token
 * redemption, and the visit counter the example app keeps. Returns the IdP's handle and the apps'.
 */
export async function signedInSession(stores: ReturnType<typeof storesFor>, user: SessionUser, limits: SessionLimits, idp: string, apps: readonly string[], userAgent?: string): Promise<{ idp: Handle; apps: Handle[] }> {
  const idpHandle = await stores.sessions.create(user, PWD, limits, idp, stores.signer, userAgent)
  const appHandles: Handle[] = []
  for (const app of apps) {
    const jti = randomId(16)
    await stores.tokens.record(idpHandle.sid, jti, 10_000) // the hand-over token's id...
    const redeemed = await stores.tokens.redeem(idpHandle.sid, jti, app) // ...consumed: the app's handle
    if (typeof redeemed === 'string') throw new Error(`redeem: ${redeemed}`)
    appHandles.push(redeemed.handle)
  }
  await stores.sessions.save(idpHandle.sid, new Map<string, unknown>([['visits', 3]]))
  return { idp: idpHandle, apps: appHandles }
}
