/**
 * The IdP's own pages a sign-in may return to (`/login?next=/sessions`), by exact path from a fixed
 * list: any other value is ignored, so `next` can never send a browser off the IdP (no open redirect).
 */
const RETURN_PAGES: ReadonlySet<string> = new Set(['/sessions', '/security'])

export function localReturn(value: unknown): string | undefined {
  return typeof value === 'string' && RETURN_PAGES.has(value) ? value : undefined
}

/** The login URL that brings the browser back to `page` once signed in. */
export function loginReturningTo(page: string): string {
  return `/login?next=${encodeURIComponent(page)}`
}
