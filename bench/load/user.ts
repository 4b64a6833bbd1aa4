/**
 * One simulated user of `npm run load`: the tests' browser over its own undici Agent bound to its own
 * source address (as real users have, so the per-address sign-in regulation stays at its defaults),
 * sending its IdP requests to the replicas in turn.
 */
import { performance } from 'node:perf_hooks'
import { Agent } from 'undici'
import { Browser, type Page } from '../../test/helpers/browser.js'
import { formFields } from '../../test/helpers/forms.js'
import { PASSWORD } from '../../test/helpers/users.js'

export interface Target { idpUrl: string; idpPorts: readonly number[]; appAUrl: string; appBUrl: string }
export interface Sample { signIn: number[]; handover: number[]; view: number[]; errors: string[] }

export function userName(i: number): string {
  return `user${String(i).padStart(3, '0')}`
}

export class SimulatedUser {
  readonly #agent: Agent
  readonly #browser: Browser
  readonly #who: string
  #next: number

  constructor(private readonly t: Target, private readonly index: number, localAddress: string, firstReplica: number, private readonly views: number) {
    this.#agent = new Agent({ localAddress, headersTimeout: 30_000, bodyTimeout: 30_000 })
    this.#browser = new Browser({ dispatcher: this.#agent })
    this.#who = `Signed in as <strong>User ${index}</strong>`
    this.#next = firstReplica
  }

  /** Signs in through app A, hands over to app B (no form), then makes its page views. */
  async run(sample: Sample): Promise<void> {
    let t0 = performance.now()
    const first = await this.#expect(`${this.t.appAUrl}/private`, 302, 'app A asks for a sign-in')
    const form = await this.#expect(first.location() ?? '', 200, 'login form')
    const fields = formFields(form.body)
    if (fields.csrf === undefined) throw new Error('login form without csrf')
    const posted = await this.#expect(`${this.t.idpUrl}/login`, 303, 'POST /login', { ...fields, username: userName(this.index), password: PASSWORD })
    const redeemed = await this.#expect(posted.location() ?? '', 302, 'redeem at app A')
    const page = await this.#expect(redeemed.location() ?? '', 200, 'app A private page')
    if (!page.body.includes(this.#who)) throw new Error('app A shows someone else')
    sample.signIn.push(performance.now() - t0)

    t0 = performance.now()
    const toIdp = await this.#expect(`${this.t.appBUrl}/private`, 302, 'app B asks for a sign-in')
    const back = await this.#expect(toIdp.location() ?? '', 302, 'IdP hands over (no form)')
    const redeemedB = await this.#expect(back.location() ?? '', 302, 'redeem at app B')
    const pageB = await this.#expect(redeemedB.location() ?? '', 200, 'app B private page')
    if (!pageB.body.includes(this.#who)) throw new Error('app B shows someone else')
    sample.handover.push(performance.now() - t0)

    await this.pageViews(sample.view)
  }

  /** Authenticated page views, alternating app A and app B; each must show this user. */
  async pageViews(into: number[]): Promise<void> {
    for (let v = 0; v < this.views; v++) {
      const t0 = performance.now()
      const view = await this.#expect(`${v % 2 === 0 ? this.t.appAUrl : this.t.appBUrl}/private`, 200, `page view ${v + 1}`)
      if (!view.body.includes(this.#who)) throw new Error(`page view ${v + 1} shows someone else`)
      into.push(performance.now() - t0)
    }
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }

  /** One request (a POST with `form`), expecting `status`; IdP requests go to the replicas in turn. */
  async #expect(url: string, status: number, step: string, form?: Record<string, string>): Promise<Page> {
    const u = new URL(url)
    if (u.hostname === '127.0.0.1' && this.t.idpPorts.includes(Number(u.port))) {
      u.port = String(this.t.idpPorts[this.#next++ % this.t.idpPorts.length])
    }
    const page = form === undefined ? await this.#browser.get(u.href) : await this.#browser.post(u.href, form)
    if (page.status !== status) throw new Error(`${step}: ${page.status} (expected ${status}) from ${form === undefined ? 'GET' : 'POST'} ${u.origin}${u.pathname}`)
    return page
  }
}
