/**
 * oidc-provider storage in Redis, following the adapter contract of its example/my_adapter.js (and
 * the layout of its example/adapters/redis.js): one key per model instance with the model's TTL,
 * consumable models as a hash so `consume` marks them, a uid index for sessions, a user-code index
 * for device codes, and a list per grant so `revokeByGrantId` can drop every token of a grant.
 */
import type { Redis } from 'ioredis'
import type { Adapter, AdapterPayload } from 'oidc-provider'

const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])
const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest'])

export class RedisAdapter implements Adapter {
  constructor(private readonly redis: Redis, private readonly name: string) {}

  async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
    const key = this.#key(id)
    const multi = this.redis.multi()
    if (consumable.has(this.name)) multi.hset(key, 'payload', JSON.stringify(payload))
    else multi.set(key, JSON.stringify(payload))
    if (expiresIn) multi.expire(key, expiresIn)
    if (grantable.has(this.name) && payload.grantId && expiresIn) {
      const grantKey = `oidc:grant:${payload.grantId}`
      // One round trip: the grant list lives as long as its longest-lived token (EXPIRE NX, then GT).
      multi.rpush(grantKey, key).expire(grantKey, expiresIn, 'NX').expire(grantKey, expiresIn, 'GT')
    }
    if (payload.userCode && expiresIn) multi.set(`oidc:userCode:${payload.userCode}`, id, 'EX', expiresIn)
    if (payload.uid && expiresIn) multi.set(`oidc:uid:${payload.uid}`, id, 'EX', expiresIn)
    const results = await multi.exec()
    const failed = results?.find(([err]) => err !== null)
    if (failed) throw failed[0]
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    if (!consumable.has(this.name)) {
      const data = await this.redis.get(this.#key(id))
      return data === null ? undefined : JSON.parse(data) as AdapterPayload
    }
    const { payload, ...rest } = await this.redis.hgetall(this.#key(id))
    return payload === undefined ? undefined : { ...rest, ...JSON.parse(payload) as AdapterPayload }
  }

  async findByUid(uid: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.get(`oidc:uid:${uid}`)
    return id === null ? undefined : this.find(id)
  }

  async findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.get(`oidc:userCode:${userCode}`)
    return id === null ? undefined : this.find(id)
  }

  async consume(id: string): Promise<void> {
    await this.redis.hset(this.#key(id), 'consumed', Math.floor(Date.now() / 1000))
  }

  async destroy(id: string): Promise<void> {
    await this.redis.del(this.#key(id))
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grantKey = `oidc:grant:${grantId}`
    const tokens = await this.redis.lrange(grantKey, 0, -1)
    await this.redis.del(...tokens, grantKey)
  }

  #key(id: string): string {
    return `oidc:${this.name}:${id}`
  }
}
