/**
 * The entries of a comma-separated setting (or of an array given in code), trimmed, each with its
 * place in the list as written. Empty entries (`a,,b`, a trailing comma) are skipped but still
 * counted, so a problem's `NAME[i]` points at the part the operator wrote there.
 */
export function listEntries(raw: string | readonly unknown[]): { readonly entry: string; readonly index: number }[] {
  const parts = typeof raw === 'string' ? raw.split(',') : raw.map(String)
  return parts.map((part, index) => ({ entry: part.trim(), index })).filter(({ entry }) => entry !== '')
}
