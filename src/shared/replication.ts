/**
 * Replica acknowledgement (Redis WAIT) for the writes that must survive a failover: a new session,
 * a minted token's id, a redeemed handle, a logout (a lost logout would bring the session back).
 */
import { Cluster, type Redis } from 'ioredis'
import { inStore, type RedisClient } from './redis.js'
import { StoreUnavailableError } from './errors.js'

/** Why a confirmation failed: the writes were made, but cannot be vouched for (a StoreUnavailableError's cause). */
export class UnacknowledgedWriteError extends Error {}

export class Replication {
  readonly #redis: RedisClient
  readonly #replicas: number
  /** Counts the client's (re)connections: WAIT only vouches for writes made on its own connection. */
  #connection = 0

  /**
   * @param replicas how many replicas must acknowledge; 0 = none. Ignored on a Cluster, whose WAIT
   *   would go to a random node rather than the session's.
   */
  constructor(redis: RedisClient, replicas: number) {
    this.#redis = redis
    this.#replicas = redis instanceof Cluster ? 0 : replicas
    if (this.#replicas > 0) redis.on('ready', () => { this.#connection++ })
  }

  /** Marks the start of a group of writes; pass the mark to `confirm`. */
  mark(): number {
    return this.#connection
  }

  /**
   * With replicas configured, resolves once that many hold every write this client made since
   * `mark`; else (too few acknowledgements, or the client reconnected in between, when the writes
   * may have gone to a primary that a failover has since demoted) throws StoreUnavailableError.
   */
  async confirm(mark: number): Promise<void> {
    if (this.#replicas === 0) return
    const acked = await inStore(() => (this.#redis as Redis).wait(this.#replicas, 1000))
    if (acked < this.#replicas) throw new StoreUnavailableError(new UnacknowledgedWriteError(`WAIT: ${acked} of ${this.#replicas} replicas acknowledged`))
    if (this.#connection !== mark) throw new StoreUnavailableError(new UnacknowledgedWriteError('WAIT: reconnected since the write (failover)'))
  }
}

