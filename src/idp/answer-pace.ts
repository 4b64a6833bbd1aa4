/**
 * A refused sign-in that checked no password (banned) must take as long as one that did, or its
 * timing would tell a banned account from a wrong password. Rather than spend argon2 work on it (one
 * form token would then buy unlimited hashing), it sleeps for the median of recent real checks: a
 * timer, not CPU.
 */
const SAMPLES = 31
// Before the first real check (a restart while bans are live): about one argon2id verify at the
// shipped costs on a small server.
const FIRST_GUESS_MS = 50

export class AnswerPace {
  readonly #samples: number[] = []
  #next = 0

  /** Records how long a real password check took. */
  record(ms: number): void {
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % SAMPLES
  }

  /** Sleeps about as long as a real check takes. */
  async wait(): Promise<void> {
    const sorted = [...this.#samples].sort((a, b) => a - b)
    const ms = sorted.length === 0 ? FIRST_GUESS_MS : (sorted[sorted.length >> 1] as number)
    await new Promise((resolve) => setTimeout(resolve, ms))
  }
}
