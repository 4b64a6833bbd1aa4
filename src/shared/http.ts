/** Plain HTTP rules both sides and every adapter share: what a request wants, and HTML text. */

/** True when the Accept header names HTML: a browser page load or form, not an API client. */
export function acceptsHtml(accept: string | undefined): boolean {
  return accept !== undefined && accept.includes('text/html')
}

/** A browser navigation: GET or HEAD that accepts HTML. Only these are redirected to sign in. */
export function isNavigation(method: string, accept: string | undefined): boolean {
  return (method === 'GET' || method === 'HEAD') && acceptsHtml(accept)
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text made safe for HTML content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string)
}

/** The Vary value that adds `Cookie` to `current` (which may already name it, or `*`). */
export function varyOnCookie(current: string | undefined): string {
  if (current === undefined || current === '') return 'Cookie'
  return /(^|,)\s*(cookie|\*)\s*(,|$)/i.test(current) ? current : `${current}, Cookie`
}
