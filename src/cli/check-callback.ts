/** `tessera check-callback <url>`: says whether the IdP would redirect there, and why not. */
import { AllowList, NOT_BASE64 } from '../idp/allow-list.js'
import { listEntries } from '../shared/list-entries.js'
import { parseOrigin } from '../shared/origin.js'
import { environment, EXIT } from './environment.js'

export const HELP = `Usage: tessera check-callback <url>

Says whether the IdP would send a signed-in user back to <url>, using KNOWN_REMOTE_HOSTS from the
environment or .env (NODE_ENV too). <url> may also be the base64url value of a callback parameter.

Exit codes: 0 allowed; 1 refused; 2 usage error or invalid KNOWN_REMOTE_HOSTS.
`

export function checkCallback(args: string[], out: (s: string) => void, err: (s: string) => void): number {
  const [target] = args
  if (target === undefined || args.length !== 1) { err(HELP); return EXIT.usage }
  const env = environment()
  const problems: string[] = []
  const origins = listEntries(env.KNOWN_REMOTE_HOSTS ?? '')
    .map(({ entry, index }) => parseOrigin(entry, `KNOWN_REMOTE_HOSTS[${index}]`, env.NODE_ENV === 'production', problems))
  if (problems.length > 0) {
    err(`tessera check-callback: invalid configuration: ${problems.join('; ')}\n`)
    return EXIT.usage
  }
  const allow = new AllowList(origins.filter((o): o is string => o !== undefined))
  const looksLikeUrl = /^[a-z][a-z0-9+.-]*:/i.test(target)
  // Standard base64's '+' reaches the IdP as a space (a query string's form encoding): the IdP refuses it.
  if (!looksLikeUrl && target.includes('+')) {
    out('refused: a "+" in the callback parameter reads as a space in a query string; encode the callback as base64url ("-" and "_" instead of "+" and "/"), or percent-encode "+" as %2B in the link\n')
    return EXIT.problem
  }
  const asParameter = looksLikeUrl ? undefined : allow.check(target)
  // Not base64 either (`//host/path`, a path): checked as the URL it was meant to be, for its reason.
  const result = asParameter === undefined || (asParameter.kind === 'refused' && asParameter.reason === NOT_BASE64) ? allow.checkUrl(target) : asParameter
  if (result.kind === 'allowed') {
    out(`allowed: the IdP would redirect to ${result.url.href} (origin ${result.url.origin} is in KNOWN_REMOTE_HOSTS)\n`)
    return EXIT.ok
  }
  const reason = result.kind === 'none' ? 'empty' : result.reason
  out(`refused: ${reason}\n`)
  if (allow.origins.length === 0) out('KNOWN_REMOTE_HOSTS is empty: no callback is allowed.\n')
  else out(`Allowed origins: ${allow.origins.join(', ')}\n`)
  return EXIT.problem
}
