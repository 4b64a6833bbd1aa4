/** Reading the forms of a served page, as a browser would fill them in. */

/** The hidden inputs of the first form on a page, their values unescaped. */
export function formFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
    fields[m[1] as string] = (m[2] as string).replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&')
  }
  return fields
}

/** The action of the first form on a page, resolved against `base`. */
export function formAction(html: string, base: string): string | undefined {
  const m = /<form[^>]*action="([^"]*)"/.exec(html)
  return m === null ? undefined : new URL((m[1] as string).replace(/&amp;/g, '&'), base).href
}
