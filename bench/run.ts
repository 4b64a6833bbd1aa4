/**
 * `npm run bench`: Tessera against oidc-provider + openid-client and against @fastify/session, on
 * loopback, every server in its own child process, one redis-server of our own. See bench/README.md.
 *
 * Environment: ROUNDS (default 3), DURATION seconds per measurement (5), WARMUP seconds per system
 * (5; the OIDC stack gets OIDC_WARMUP, 10), CONCURRENCY (10), BENCH_QUICK=1 (1 s measurements,
 * short warm-ups), BENCH_PROFILE=idp,app,... (run those children with --cpu-prof),
 * BENCH_LOG_LEVEL (warn), BENCH_OIDC_VERIFY_SIGNATURE=1 (RP also checks the ID token's JWS),
 * BENCH_ONLY=handover,oidc,bare,pageview,mint,signin,totp (a subset, e.g. to profile one path; the JSON is then partial),
 * BENCH_REDIS_AUTOPIPELINING=1 (experiment: the IdP and app get ioredis clients with enableAutoPipelining).
 */
import { mkdirSync } from 'node:fs'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import { Agent } from 'undici'
import { calibrate, Meter } from './lib/meter.js'
import { startBenchRedis } from './lib/redis.js'
import { printReport, results, writeJson } from './lib/report.js'
import { measureRounds, signinSamples, totpSamples, warmUp } from './lib/rounds.js'
import { startServers } from './lib/servers.js'
import { CONCURRENCY, DURATION_S, LOG_LEVEL, OIDC_WARMUP_S, ONLY, QUICK, ROUNDS, WARMUP_S, log, resultsDir, runDir } from './lib/settings.js'
import { setUpSystems } from './lib/systems.js'
import { setUpTotp } from './lib/totp.js'

async function main(): Promise<number> {
  mkdirSync(runDir, { recursive: true })
  mkdirSync(resultsDir, { recursive: true })
  const startedAt = performance.now()
  const loadBefore = loadavg()
  const calibrationBefore = calibrate()
  log(`tessera bench: ${ROUNDS} rounds x ${DURATION_S} s per measurement, warm-up ${WARMUP_S} s (OIDC ${OIDC_WARMUP_S} s), concurrency ${CONCURRENCY}` +
    `${QUICK ? ' (BENCH_QUICK)' : ''}; server logs at level '${LOG_LEVEL}' in ${runDir}`)

  const redis = await startBenchRedis()
  const meter = new Meter(redis)
  const agents: Agent[] = []
  // nginx is not a Node child of the meter's: stopped on its own.
  let stopNginx = async (): Promise<void> => {}
  const stopServers = async (): Promise<void> => { await Promise.allSettled([...meter.servers.map((s) => s.stop()), stopNginx()]) }
  const cleanup = async (): Promise<void> => {
    await stopServers()
    await Promise.allSettled(agents.map((a) => a.close()))
    await redis.stop()
  }
  const onSignal = (): void => { void cleanup().then(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    const servers = await startServers(meter)
    stopNginx = async () => { await Promise.allSettled([servers.nginx.stop(), servers.nginxFloor.stop()]) }
    const atStart = await meter.snapshot()
    const { idp, app, op, rp, fsNoRolling, fsDefault, hello } = servers
    log(`servers up: IdP ${idp.url}, app ${app.url}, OP ${op.url}, RP ${rp.url}, @fastify/session ${fsNoRolling.url} / ${fsDefault.url}, hello ${hello.url}, nginx + gate ${servers.nginx.url} / ${servers.gate.url}; redis ${redis.url}`)
    const systems = await setUpSystems(servers, agents)
    await warmUp(systems, meter)
    const samples = await measureRounds(systems, meter)
    if (ONLY.has('totp')) {
      const totpAgent = new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 })
      agents.push(totpAgent)
      const totp = await setUpTotp({ idp, app, floor: servers.totpFloor, factorKeys: servers.factorKeys, meter, agent: totpAgent })
      try { await totpSamples(totp, samples) } finally { totp.close() }
    }
    const signinAgent = new Agent({ keepAliveTimeout: 30_000, connections: null, pipelining: 1 })
    agents.push(signinAgent)
    await signinSamples(systems, servers, signinAgent, meter, samples)
    const redisInfo = await redis.info()
    await stopServers() // now, so profiles (BENCH_PROFILE) are written
    const r = results(samples)
    printReport(r, meter)
    writeJson(r, samples, meter, { startedAt, loadBefore, calibrationBefore, atStart, redisInfo })
    if (meter.errorsTotal > 0) log('INVALID RUN: some hand-overs or page views failed (see errors above); the numbers are not comparable.')
    return meter.errorsTotal > 0 ? 1 : 0
  } finally {
    await cleanup()
  }
}

main().then((code) => process.exit(code), (err: Error) => {
  process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`)
  process.exit(2)
})
