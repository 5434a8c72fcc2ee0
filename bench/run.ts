/**
 * `npm run bench [-- --quick] [-- --only=open,rbac,rbacNewTopic,newTopic,connect,evaluate,engine,scale,revocation]`
 *
 * Measures every figure of SPEC §6 side by side in one run: ScopeGate (sidecar + broker processes, as
 * shipped) against plain Aedes 1.x with no hooks (same options, started here), driven by the same load
 * generator processes (raw sockets + mqtt-packet). Prints a table and writes every figure, the ratios and
 * the machine to bench/results/<timestamp>.json (and latest.json).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { round, root } from './lib.ts';
import { buildConnectClients, buildPubSubWorld, runConnect, runPubSub, type PubSubKind, type PubSubResult } from './mqtt-scenarios.ts';
import { runEngineComparison, runInProcessScale } from './engine-scenarios.ts';
import { loadEvaluate, runEvaluateHttp, startScaleSidecar, type HttpEvaluateResult } from './evaluate-http.ts';
import { runRevocation } from './revocation.ts';
import { startPlainAedes, startScopeGate } from './system.ts';

const quick = process.argv.includes('--quick');
const onlyArg = process.argv.find((a) => a.startsWith('--only='));
const only = onlyArg ? new Set(onlyArg.slice(7).split(',')) : null;
const wants = (name: string) => !only || only.has(name);

const settings = quick
  ? { pairs: 4, durationMs: 2_000, warmupMs: 500, latencyMs: 1_500, rounds: 3, connectClients: 10_000, connectActors: 50, evaluateMs: 3_000, engineMs: 500, revocations: 100 }
  : { pairs: 4, durationMs: 5_000, warmupMs: 1_000, latencyMs: 4_000, rounds: 7, connectClients: 10_000, connectActors: 200, evaluateMs: 10_000, engineMs: 2_000, revocations: 200 };

const roundsArg = process.argv.find((a) => a.startsWith('--rounds='));
if (roundsArg) settings.rounds = Number(roundsArg.slice(9));
const pairsArg = process.argv.find((a) => a.startsWith('--pairs='));
if (pairsArg) settings.pairs = Number(pairsArg.slice(8));

interface Row {
  figure: string;
  scopegate: string;
  baseline: string;
  ratio: number | null;
  target: string;
  met: boolean | null;
}
const rows: Row[] = [];
const figures: Record<string, unknown> = {};
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The pub/sub figures of SPEC §6; a null target is reported without one. */
const PUBSUB: Array<{ kind: PubSubKind; target: number | null; label: string }> = [
  { kind: 'open', target: 0.95, label: 'QoS 0, open app' },
  { kind: 'rbac', target: 0.9, label: 'QoS 0, rbac app, 1,000 perms, 1,998 distinct topics' },
  { kind: 'rbacNewTopic', target: null, label: 'QoS 0, rbac app, 1,000 perms, new topic per publish' },
  { kind: 'newTopic', target: 0.85, label: 'QoS 0, open app, new topic per publish' },
];

/**
 * The three publish→deliver scenarios on one ScopeGate and one plain Aedes: short rounds alternate between
 * the two brokers so that drift on a shared machine hits both alike; the median round counts. Throughput is
 * taken with a bounded window of messages in flight per publisher (saturating, without measuring buffer
 * sizes); latency at a fixed moderate rate (half of plain Aedes' throughput) where queues do not dominate.
 */
async function pubsubAll() {
  const scenarios = PUBSUB.filter((s) => wants(s.kind));
  if (scenarios.length === 0) return;
  log('publish→deliver: starting ScopeGate and plain Aedes');
  // --profile: both brokers write V8 CPU profiles (open them in Chrome DevTools) to bench/profiles/.
  const profile = (name: string) => (process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles', name)}`] : []);
  const sut = await startScopeGate({}, profile('scopegate'));
  const plain = await startPlainAedes(profile('plain-aedes'));
  try {
    for (const { kind, target, label } of scenarios) {
      const world = await buildPubSubWorld(sut.sg, kind, settings.pairs);
      const base = { durationMs: settings.durationMs, warmupMs: settings.warmupMs, loadgens: 2, ratePerPublisher: null };
      const sg: PubSubResult[] = [];
      const pa: PubSubResult[] = [];
      for (let r = 0; r < settings.rounds; r++) {
        pa.push(await runPubSub(plain.port, world.plain, { ...base, brokerPid: plain.pid }));
        sg.push(await runPubSub(sut.brokerPort, world.scopegate, { ...base, brokerPid: sut.brokerPid }));
        const [p, g] = [pa.at(-1)!, sg.at(-1)!];
        log(`${label}: round ${r + 1}: plain ${round(p.deliveredPerSecond, 0)}/s (cpu ${round(p.brokerCpuPercent, 0)}%), scopegate ${round(g.deliveredPerSecond, 0)}/s (cpu ${round(g.brokerCpuPercent, 0)}%); load generators ≤ ${round(Math.max(p.loadgenCpuPercent, g.loadgenCpuPercent), 0)}% cpu`);
      }
      const med = (xs: PubSubResult[], f: (x: PubSubResult) => number) => median(xs.map(f));
      const sgRate = med(sg, (x) => x.deliveredPerSecond);
      const paRate = med(pa, (x) => x.deliveredPerSecond);
      const ratio = median(sg.map((x, i) => x.deliveredPerSecond / pa[i]!.deliveredPerSecond));
      const cpuRatio = med(sg, (x) => x.deliveredPerCpuSecond) / med(pa, (x) => x.deliveredPerCpuSecond);
      const rate = Math.max(100, Math.floor(paRate / 2 / settings.pairs));
      const latencyBase = { ...base, durationMs: settings.latencyMs, warmupMs: 500, ratePerPublisher: rate };
      const paLat = await runPubSub(plain.port, world.plain, { ...latencyBase, brokerPid: plain.pid });
      const sgLat = await runPubSub(sut.brokerPort, world.scopegate, { ...latencyBase, brokerPid: sut.brokerPid });
      figures[kind] = {
        scopegateDeliveredPerSecond: round(sgRate, 0),
        plainAedesDeliveredPerSecond: round(paRate, 0),
        ratio: round(ratio, 3),
        perCpuSecond: { scopegate: round(med(sg, (x) => x.deliveredPerCpuSecond), 0), plainAedes: round(med(pa, (x) => x.deliveredPerCpuSecond), 0), ratio: round(cpuRatio, 3) },
        rounds: { scopegate: sg.map(summary), plainAedes: pa.map(summary) },
        fixedRate: { messagesPerSecond: rate * settings.pairs, scopegate: { p50Ms: round(sgLat.p50Ms), p99Ms: round(sgLat.p99Ms), delivered: sgLat.delivered, published: sgLat.published }, plainAedes: { p50Ms: round(paLat.p50Ms), p99Ms: round(paLat.p99Ms), delivered: paLat.delivered, published: paLat.published } },
        pairs: settings.pairs,
      };
      rows.push({
        figure: `${label}: msgs/s [per broker cpu-s] (p50/p99 ms at ${rate * settings.pairs}/s)`,
        scopegate: `${round(sgRate, 0)} [${round(med(sg, (x) => x.deliveredPerCpuSecond), 0)}] (${round(sgLat.p50Ms)}/${round(sgLat.p99Ms)})`,
        baseline: `${round(paRate, 0)} [${round(med(pa, (x) => x.deliveredPerCpuSecond), 0)}] (${round(paLat.p50Ms)}/${round(paLat.p99Ms)})`,
        ratio: round(ratio, 3),
        target: target === null ? '(reported)' : `≥ ${target} ×`,
        met: target === null ? null : ratio >= target,
      });
      rows.push({ figure: `  the same per broker cpu-second`, scopegate: '', baseline: '', ratio: round(cpuRatio, 3), target: target === null ? '(reported)' : `≥ ${target} ×`, met: target === null ? null : cpuRatio >= target });
    }
  } finally {
    await Promise.all([sut.stop(), plain.stop()]);
  }
}

function summary(x: PubSubResult) {
  return { perSecond: round(x.deliveredPerSecond, 0), brokerCpuPercent: round(x.brokerCpuPercent, 0), perCpuSecond: round(x.deliveredPerCpuSecond, 0), loadgenCpuPercent: round(x.loadgenCpuPercent, 0) };
}

async function connect() {
  log('connect: setting up');
  const profile = (name: string) => (process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles', name)}`] : []);
  const sut = await startScopeGate({}, profile('connect-broker'), profile('connect-sidecar'));
  const plain = await startPlainAedes();
  try {
    const clients = await buildConnectClients(sut.sg, settings.connectClients, settings.connectActors);
    const pa = await runConnect(plain.port, plain.pid, clients.plain, { loadgens: 2, concurrency: 100 });
    log(`connect: plain ${round(pa.connectsPerSecond, 0)}/s`);
    const sg = await runConnect(sut.brokerPort, sut.brokerPid, clients.scopegate, { loadgens: 2, concurrency: 100, sidecarPid: sut.sidecarPid });
    log(`connect: scopegate ${round(sg.connectsPerSecond, 0)}/s (${sg.connected} connected, ${sg.failed} failed); cpu per CONNECT: broker ${round(sg.brokerCpuUsPerConnect, 0)} µs + sidecar ${round(sg.sidecarCpuUsPerConnect, 0)} µs, plain Aedes ${round(pa.brokerCpuUsPerConnect, 0)} µs`);
    const ratio = sg.connectsPerSecond / pa.connectsPerSecond;
    figures.connect = { scopegate: sg, plainAedes: pa, ratio: round(ratio, 3), clients: settings.connectClients, actors: settings.connectActors, auth: 'JWT (ES256), a distinct token per connection, verified by the sidecar on every CONNECT' };
    rows.push({ figure: `CONNECT→CONNACK /s, ${settings.connectClients} held (JWT)`, scopegate: `${round(sg.connectsPerSecond, 0)} (${sg.connected} held)`, baseline: `${round(pa.connectsPerSecond, 0)}`, ratio: round(ratio, 3), target: '≥ 0.5 ×, 10k held', met: ratio >= 0.5 && sg.connected >= 10_000 });
    rows.push({ figure: 'broker memory per connection (KiB)', scopegate: `${round(sg.bytesPerConnection / 1024, 1)}`, baseline: `${round(pa.bytesPerConnection / 1024, 1)}`, ratio: null, target: 'reported', met: null });
  } finally {
    await Promise.all([sut.stop(), plain.stop()]);
  }
}

async function main() {
  const started = Date.now();
  await pubsubAll();
  if (wants('connect')) await connect();
  if (wants('evaluate')) {
    log('evaluate over HTTP');
    const r = await runEvaluateHttp(1_000, { concurrency: 16, durationMs: settings.evaluateMs, warmupMs: 1_000 });
    figures.evaluateHttp = r;
    rows.push({ figure: `POST /v1/evaluate decisions/s (p50/p99 ms, ${r.concurrency} in flight)`, scopegate: `${round(r.decisionsPerSecond, 0)} (${round(r.p50Ms)}/${round(r.p99Ms)})`, baseline: '—', ratio: null, target: '≥ 5,000/s, p99 ≤ 5 ms', met: r.decisionsPerSecond >= 5_000 && r.p99Ms <= 5 && r.errors === 0 });
  }
  if (wants('engine')) {
    log('in-process evaluate vs casbin enforce()');
    const r = await runEngineComparison(settings.engineMs);
    figures.engineVsCasbin = r;
    rows.push({ figure: 'in-process decisions/s vs casbin enforce() (RBAC with domains)', scopegate: `${round(r.scopegatePerSecond, 0)}`, baseline: `${round(r.casbinPerSecond, 0)} (casbin)`, ratio: round(r.scopegatePerSecond / r.casbinPerSecond, 3), target: '≥ 1 ×', met: r.scopegatePerSecond >= r.casbinPerSecond && r.agreement.disagreements === 0 });
  }
  if (wants('scale')) {
    log('evaluate latency at 1,000 and 100,000 actors (HTTP, then in-process)');
    // Both sidecars up at once, load rounds alternating between them; the median round counts.
    const [smallSidecar, largeSidecar] = [await startScaleSidecar(1_000), await startScaleSidecar(100_000)];
    const smallRuns: HttpEvaluateResult[] = [];
    const largeRuns: HttpEvaluateResult[] = [];
    try {
      const opts = { concurrency: 4, durationMs: Math.max(1_500, Math.floor(settings.evaluateMs / 2)), warmupMs: 500 };
      for (let r = 0; r < 3; r++) {
        smallRuns.push(await loadEvaluate(smallSidecar, opts));
        largeRuns.push(await loadEvaluate(largeSidecar, opts));
      }
    } finally {
      await Promise.all([smallSidecar.stop(), largeSidecar.stop()]);
    }
    const byMean = (xs: HttpEvaluateResult[]) => [...xs].sort((a, b) => a.meanMs - b.meanMs)[1]!;
    const small = byMean(smallRuns);
    const large = byMean(largeRuns);
    const smallIn = await runInProcessScale(1_000);
    const largeIn = await runInProcessScale(100_000);
    figures.scale = { http: { small, large, rounds: { small: smallRuns.map((x) => round(x.meanMs, 3)), large: largeRuns.map((x) => round(x.meanMs, 3)) }, ratioMean: round(large.meanMs / small.meanMs, 3), ratioP50: round(large.p50Ms / small.p50Ms, 3) }, inProcess: { small: smallIn, large: largeIn, ratioMean: round(largeIn.meanUs / smallIn.meanUs, 3) } };
    rows.push({ figure: 'POST /v1/evaluate mean ms at 100k actors vs 1k', scopegate: `${round(large.meanMs, 3)} (p99 ${round(large.p99Ms)})`, baseline: `${round(small.meanMs, 3)} (p99 ${round(small.p99Ms)}) at 1k`, ratio: round(large.meanMs / small.meanMs, 3), target: '≤ 1.5 ×', met: large.meanMs / small.meanMs <= 1.5 });
    rows.push({ figure: '  in-process evaluate() mean µs, 100k vs 1k', scopegate: `${round(largeIn.meanUs, 2)}`, baseline: `${round(smallIn.meanUs, 2)} at 1k`, ratio: round(largeIn.meanUs / smallIn.meanUs, 3), target: '(reported)', met: null });
  }
  if (wants('revocation')) {
    log('revocation latency');
    const r = await runRevocation(settings.revocations);
    figures.revocation = r;
    rows.push({ figure: `revocation ms p50/p99 (${r.count} revocations)`, scopegate: `${round(r.p50Ms)}/${round(r.p99Ms)}`, baseline: '—', ratio: null, target: 'p99 ≤ 100 ms', met: r.p99Ms <= 100 });
  }

  const machine = { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: round(totalmem() / 2 ** 30, 1), node: process.version, platform: `${process.platform}/${process.arch}` };
  const result = { at: new Date().toISOString(), mode: quick ? 'quick' : 'full', seconds: round((Date.now() - started) / 1000, 1), machine, settings, rows, figures };
  const dir = join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${result.at.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(join(dir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  printTable(rows);
  process.stdout.write(`\nmachine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, Node ${machine.node}; ${result.mode} run in ${result.seconds} s\nresults: ${file}\n`);
}

function printTable(list: Row[]) {
  const header = ['figure', 'ScopeGate', 'baseline (plain Aedes)', 'ratio', 'target', 'met'];
  const body = list.map((r) => [r.figure, r.scopegate, r.baseline, r.ratio === null ? '' : String(r.ratio), r.target, r.met === null ? '' : r.met ? 'yes' : 'NO']);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  process.stdout.write(`\n${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('-|-')}\n${body.map(line).join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
