import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuMsOf, percentile, root, sleep, spawnJson } from './lib.ts';

export interface HttpEvaluateResult {
  actors: number;
  concurrency: number;
  decisionsPerSecond: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Open-loop runs: requests not sent because `concurrency` were already in flight. */
  skipped: number;
  /** CPU use of the sidecar and of the load process over the measured window (100 % = one core). */
  sidecarCpuPercent: number;
  loadCpuPercent: number;
}

/** A sidecar process holding `actors` actors (bench/scale-sidecar.ts), ready for evaluate load. */
export async function startScaleSidecar(actors: number) {
  const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles', 'sidecar')}`] : [];
  const sidecar = spawnJson('bench/scale-sidecar.ts', {}, [String(actors)], profile);
  const info = await sidecar.next((l) => typeof l.url === 'string', 300_000);
  return { actors, info, pid: sidecar.child.pid!, stop: () => sidecar.stop() };
}

/**
 * `POST /v1/evaluate` over real HTTP against a sidecar process, from a separate load process with
 * `concurrency` keep-alive requests in flight.
 */
export async function loadEvaluate(target: LoadTarget, options: { concurrency: number; durationMs: number; warmupMs: number; ratePerSecond?: number }): Promise<HttpEvaluateResult> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-eval-'));
  try {
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ url: target.info.url, token: target.info.token, bodies: target.info.bodies, ...options }));
    const load = spawnJson('bench/evaluate-load.ts', { LOADGEN_CONFIG_FILE: file });
    const answer = load.next((l) => typeof l.count === 'number', options.durationMs + options.warmupMs + 60_000);
    await sleep(options.warmupMs);
    const cpu0 = cpuMsOf(target.pid);
    const loadCpu0 = cpuMsOf(load.child.pid!);
    const wall0 = Date.now();
    await sleep(options.durationMs - 100);
    const sidecarCpuPercent = ((cpuMsOf(target.pid) - cpu0) / (Date.now() - wall0)) * 100;
    const loadCpuPercent = ((cpuMsOf(load.child.pid!) - loadCpu0) / (Date.now() - wall0)) * 100;
    const r = await answer;
    await load.stop();
    const latencies = r.latencies as number[];
    return {
      actors: target.actors,
      concurrency: options.concurrency,
      decisionsPerSecond: (r.count as number) / (r.seconds as number),
      errors: r.errors as number,
      skipped: (r.skipped as number | undefined) ?? 0,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      sidecarCpuPercent,
      loadCpuPercent,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The constant-answer server of bench/constant-http-server.ts, as a load target like a sidecar. */
export async function startConstantHttpServer() {
  const server = spawnJson('bench/constant-http-server.ts', {});
  const info = await server.next((l) => typeof l.url === 'string', 60_000);
  return { actors: 0, info, pid: server.child.pid!, stop: () => server.stop() };
}

type LoadTarget = Awaited<ReturnType<typeof startScaleSidecar>>;
type EvaluateOptions = { concurrency: number; durationMs: number; warmupMs: number };

/** Throughput with `options.concurrency` in flight, then latency at `fixedRate` (open loop); the target stopped after. */
async function saturatedThenAtRate(started: Promise<LoadTarget>, options: EvaluateOptions, fixedRate: number): Promise<{ saturated: HttpEvaluateResult; atRate: HttpEvaluateResult }> {
  const target = await started;
  try {
    const saturated = await loadEvaluate(target, options);
    const atRate = await loadEvaluate(target, { ...options, concurrency: 64, ratePerSecond: fixedRate });
    return { saturated, atRate };
  } finally {
    await target.stop();
  }
}

/** The same two load runs as runEvaluateHttp against the constant-answer server. */
export function runConstantHttpFloor(options: EvaluateOptions, fixedRate: number) {
  return saturatedThenAtRate(startConstantHttpServer(), options, fixedRate);
}

/** One sidecar with `actors` actors, one load run against it. */
export function runEvaluateHttp(actors: number, options: EvaluateOptions, fixedRate: number) {
  return saturatedThenAtRate(startScaleSidecar(actors), options, fixedRate);
}
