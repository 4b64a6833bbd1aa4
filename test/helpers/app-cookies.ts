/**
 * The plugin's default cookie names at an app origin: cookies ignore ports, so a non-default port
 * joins the name (`tessera_3001`, `tessera_3001_state`), as README's option table says.
 */
export function appCookies(appUrl: string): { readonly session: string; readonly state: string } {
  const port = new URL(appUrl).port
  const session = port === '' ? 'tessera' : `tessera_${port}`
  return { session, state: `${session}_state` }
}
