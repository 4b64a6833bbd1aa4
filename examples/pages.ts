/** The example apps' pages (Fastify's and Express's alike): self-contained HTML, one small inline style. */
import type { TesseraUser } from '../src/remote/index.js'

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** Self-contained pages (an app on another origin cannot share the IdP's stylesheet): one small inline style. */
const STYLE = ':root{color-scheme:light dark;--fg:#1d232a;--muted:#5b6570;--bg:#f4f5f7;--card:#fff;--line:#d9dde3;--ink:var(--accent)}' +
  '@media (prefers-color-scheme:dark){:root{--fg:#e6e8eb;--muted:#9aa4af;--bg:#14171b;--card:#1d2127;--line:#333a43;--ink:color-mix(in srgb,var(--accent) 45%,#fff)}}' +
  '*{box-sizing:border-box}body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,sans-serif}' +
  'main{width:min(28rem,92vw);background:var(--card);border:1px solid var(--line);border-top:6px solid var(--accent);border-radius:12px;padding:2rem}' +
  '.brand{margin:0 0 1rem;font-weight:700;letter-spacing:.08em;text-transform:uppercase;font-size:.8rem;color:var(--ink)}' +
  'h1{margin:0 0 1rem;font-size:1.5rem}.muted{color:var(--muted)}a{color:var(--ink)}ul{padding-left:1.2rem}' +
  'button,.button{display:inline-block;margin-top:1rem;padding:.6rem 1rem;border:1px solid var(--accent);border-radius:8px;background:var(--accent);color:#fff;font:inherit;font-weight:600;text-decoration:none;cursor:pointer}' +
  'button{background:transparent;color:var(--ink);border-color:var(--ink)}'

function page(name: string, accent: string, title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">` +
  `<title>${esc(title)}</title><style>${STYLE}:root{--accent:${accent}}</style></head>` +
  `<body><main><p class="brand">${esc(name)}</p>${body}</main></body></html>`
}

/** A CSS hex colour, or the default blue. */
export function accentOf(accent: string | undefined): string {
  return /^#[0-9a-f]{3,8}$/i.test(accent ?? '') ? accent as string : '#2a5bd7'
}

export function homePage(name: string, accent: string, user: TesseraUser | undefined): string {
  return page(name, accent, name, '<h1>Home</h1>' +
    '<p class="muted">An example app on its own site, signed in through Tessera.</p>' +
    (user ? `<p>Signed in as <strong>${esc(user.displayName)}</strong>.</p>` : '<p>You are not signed in.</p>') +
    '<p><a class="button" href="/private">Open the private page</a></p>')
}

/** The private page: who is signed in, the visit counter every app of the session shares, links to the other apps. */
export function privatePage(name: string, accent: string, user: TesseraUser, visits: number, links: readonly string[]): string {
  const items = links.map((l) => `<li><a href="${esc(l)}/private">${esc(l.replace(/^https?:\/\//, ''))}</a></li>`).join('')
  return page(name, accent, `${name}: private`,
    '<h1>Private page</h1>' +
    `<p id="who">Signed in as <strong>${esc(user.displayName)}</strong> (${esc(user.username)}).</p>` +
    `<p>Visits across all apps in this session: <strong id="visits">${visits}</strong></p>` +
    (items ? `<p>Your other apps, no second sign-in:</p><ul>${items}</ul>` : '') +
    '<form method="post" action="/logout"><button type="submit">Sign out everywhere</button></form>')
}
