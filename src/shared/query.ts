/** Raw query-string edits that keep every other parameter byte for byte. */

/**
 * Removes every `name` parameter from a raw query (with or without its leading `?`) and, with
 * `safeValue`, appends `name=safeValue`. Names are compared decoded, as query parsers see them, so an
 * encoded `t%6Fken` is also removed. `safeValue` goes in as it is: the caller passes only characters
 * a query carries unchanged (a token: base64url parts joined by dots, token.ts), so no pass over a
 * few hundred characters re-encodes it to itself. Returns the new search string, `?`-prefixed or empty.
 */
export function replaceQueryParam(search: string, name: string, safeValue?: string): string {
  const raw = search.startsWith('?') ? search.slice(1) : search
  const kept = raw === '' ? [] : raw.split('&').filter((part) => part !== '' && decodedName(part) !== name)
  if (safeValue !== undefined) kept.push(`${encodeURIComponent(name)}=${safeValue}`)
  return kept.length === 0 ? '' : `?${kept.join('&')}`
}

function decodedName(part: string): string {
  const eq = part.indexOf('=')
  const rawName = (eq < 0 ? part : part.slice(0, eq)).replace(/\+/g, ' ')
  try {
    return decodeURIComponent(rawName)
  } catch {
    return rawName // malformed escapes: keep the parameter, it is not ours
  }
}

/** Encodes a return URL for the IdP's `callback` parameter: base64url of its UTF-8 text, no padding. */
export function encodeCallback(url: string): string {
  return Buffer.from(url, 'utf8').toString('base64url')
}
