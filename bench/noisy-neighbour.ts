/**
 * Noisy neighbours (SPEC §6 last row, issue 13): a noisy tenant publishes at 10× its limit while a quiet
 * tenant runs its pairs; the quiet tenant's throughput and p99 latency are compared with the quiet tenant
 * alone on the same broker. Also the cost of limits on the open-app figure: the same open-app pairs in a
 * tenant with limits set (none of which binds) against a tenant without limits, rounds alternating.
 *
 * The noisy tenant's limit is a per-session publish rate: backpressure, so the broker reads the noisy
 * sockets only as fast as the limit allows and the noise never reaches the broker's CPU (a per-subtree
 * rate would drop QoS 0 instead, but every dropped packet is still read and parsed).
 */
import type { ScopeGateClient } from '../client/index.ts';
import { round, sleep } from './lib.ts';
import { buildPubSubWorld, runPubSub, type PubSubResult } from './mqtt-scenarios.ts';
import { startScopeGate } from './system.ts';

export interface NoisySettings {
  pairs: number;
  durationMs: number;
  warmupMs: number;
  latencyMs: number;
  rounds: number;
  /** How long the noisy tenant publishes (30 s in the full run). */
  noisyMs: number;
}

/** The noisy tenant's per-session limit (messages/s); it offers 10× this per publisher. */
const NOISY_LIMIT = 500;
const NOISY_PAIRS = 2;

/** Limits that never bind at bench rates: what limits cost when they are configured but not reached. */
const SLACK_LIMITS = {
  maxSubscriptionsPerSession: 100,
  maxPayloadBytes: 65_536,
  maxQueuedMessages: 10_000,
  publishRate: { perSession: { messagesPerSecond: 10_000_000, bytesPerSecond: 1_000_000_000 }, perSubtree: { messagesPerSecond: 10_000_000 } },
  retained: { maxMessages: 1_000, maxBytes: 10_000_000 },
};

export async function runNoisyNeighbour(settings: NoisySettings, log: (m: string) => void) {
  const sut = await startScopeGate();
  try {
    const quiet = await buildPubSubWorld(sut.sg, 'open', settings.pairs);
    const noisy = await buildPubSubWorld(sut.sg, 'open', NOISY_PAIRS);
    await setLimits(sut.sg, noisy.tenantId, { publishRate: { perSession: { messagesPerSecond: NOISY_LIMIT } } });
    const limited = await buildPubSubWorld(sut.sg, 'open', settings.pairs);
    await setLimits(sut.sg, limited.tenantId, SLACK_LIMITS);

    const saturate = { durationMs: settings.durationMs, warmupMs: settings.warmupMs, loadgens: 2, ratePerPublisher: null, brokerPid: sut.brokerPid };
    const median = (xs: PubSubResult[]) => [...xs].sort((a, b) => a.deliveredPerSecond - b.deliveredPerSecond)[Math.floor(xs.length / 2)]!;

    // The cost of limits: alternating rounds, tenant without limits vs tenant with (non-binding) limits.
    const free: PubSubResult[] = [];
    const withLimits: PubSubResult[] = [];
    for (let r = 0; r < settings.rounds; r++) {
      free.push(await runPubSub(sut.brokerPort, quiet.scopegate, saturate));
      withLimits.push(await runPubSub(sut.brokerPort, limited.scopegate, saturate));
      log(`limits cost: round ${r + 1}: without ${round(free.at(-1)!.deliveredPerSecond, 0)}/s, with ${round(withLimits.at(-1)!.deliveredPerSecond, 0)}/s`);
    }
    const costRatio = median(withLimits.map((x, i) => ({ ...x, deliveredPerSecond: x.deliveredPerSecond / free[i]!.deliveredPerSecond }))).deliveredPerSecond;

    // The quiet tenant alone: `free` above is exactly that (same pairs, same broker, nothing else running).
    const alone = median(free);
    const rate = Math.max(100, Math.floor(alone.deliveredPerSecond / 2 / settings.pairs));
    const fixed = { ...saturate, durationMs: settings.latencyMs, warmupMs: 500, ratePerPublisher: rate };
    const aloneLatency = await runPubSub(sut.brokerPort, quiet.scopegate, fixed);
    log(`quiet alone: ${round(alone.deliveredPerSecond, 0)}/s; at ${rate * settings.pairs}/s p50/p99 ${round(aloneLatency.p50Ms)}/${round(aloneLatency.p99Ms)} ms`);

    // Now with the noisy tenant publishing at 10× its limit for the whole measurement.
    const needMs = settings.rounds * (settings.durationMs + settings.warmupMs + 1_500) + settings.latencyMs + 2_500;
    const noisyMs = Math.max(settings.noisyMs, needMs);
    const noise = runPubSub(sut.brokerPort, noisy.scopegate, { durationMs: noisyMs - 1_000, warmupMs: 1_000, loadgens: 1, ratePerPublisher: NOISY_LIMIT * 10, brokerPid: sut.brokerPid });
    await sleep(1_500);
    const crowded: PubSubResult[] = [];
    for (let r = 0; r < settings.rounds; r++) {
      crowded.push(await runPubSub(sut.brokerPort, quiet.scopegate, saturate));
      log(`quiet with noisy: round ${r + 1}: ${round(crowded.at(-1)!.deliveredPerSecond, 0)}/s`);
    }
    const crowdedLatency = await runPubSub(sut.brokerPort, quiet.scopegate, fixed);
    const noisyResult = await noise;
    const withNoise = median(crowded);
    const throughputRatio = withNoise.deliveredPerSecond / alone.deliveredPerSecond;
    const p99Ratio = crowdedLatency.p99Ms / aloneLatency.p99Ms;
    log(`quiet with noisy: ${round(withNoise.deliveredPerSecond, 0)}/s (${round(throughputRatio, 3)}×); p99 ${round(crowdedLatency.p99Ms)} ms (${round(p99Ratio, 3)}×); noisy offered ${NOISY_LIMIT * 10 * NOISY_PAIRS}/s, delivered ${round(noisyResult.deliveredPerSecond, 0)}/s`);

    const figures = {
      noisyLimitPerSession: NOISY_LIMIT,
      noisyOfferedPerSecond: NOISY_LIMIT * 10 * NOISY_PAIRS,
      noisyDeliveredPerSecond: round(noisyResult.deliveredPerSecond, 0),
      noisySeconds: round(noisyMs / 1000, 1),
      quietAlone: { perSecond: round(alone.deliveredPerSecond, 0), p50Ms: round(aloneLatency.p50Ms), p99Ms: round(aloneLatency.p99Ms) },
      quietWithNoisy: { perSecond: round(withNoise.deliveredPerSecond, 0), p50Ms: round(crowdedLatency.p50Ms), p99Ms: round(crowdedLatency.p99Ms), rounds: crowded.map((x) => round(x.deliveredPerSecond, 0)) },
      throughputRatio: round(throughputRatio, 3),
      p99Ratio: round(p99Ratio, 3),
      limitsCost: { without: free.map((x) => round(x.deliveredPerSecond, 0)), with: withLimits.map((x) => round(x.deliveredPerSecond, 0)), ratio: round(costRatio, 3) },
      fixedRatePerSecond: rate * settings.pairs,
    };
    const rows = [
      {
        figure: `quiet tenant (${settings.pairs} pairs) while a noisy one offers 10× its limit: msgs/s (p99 ms at ${rate * settings.pairs}/s)`,
        scopegate: `${round(withNoise.deliveredPerSecond, 0)} (${round(crowdedLatency.p99Ms)})`,
        baseline: `${round(alone.deliveredPerSecond, 0)} (${round(aloneLatency.p99Ms)}) alone`,
        ratio: round(throughputRatio, 3),
        target: '≥ 0.9 ×',
        met: throughputRatio >= 0.9,
      },
      { figure: '  its p99 latency vs alone', scopegate: '', baseline: '', ratio: round(p99Ratio, 3), target: '≤ 1.5 ×', met: p99Ratio <= 1.5 },
      {
        figure: 'open app with limits set (none binding) vs without',
        scopegate: `${round(median(withLimits).deliveredPerSecond, 0)}`,
        baseline: `${round(alone.deliveredPerSecond, 0)} without`,
        ratio: round(costRatio, 3),
        target: '≥ 0.95 ×',
        met: costRatio >= 0.95,
      },
    ];
    return { figures, rows };
  } finally {
    await sut.stop();
  }
}

async function setLimits(sg: ScopeGateClient, tenantId: string, limits: unknown): Promise<void> {
  await sg.tenants.update(tenantId, { limits } as never);
}
