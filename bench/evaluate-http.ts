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
  /** CPU use of the sidecar and of the load process over the measured window (100 % = one core). */
  sidecarCpuPercent: number;
  loadCpuPercent: number;
}

/**
 * `POST /v1/evaluate` over real HTTP against a sidecar process holding `actors` actors, from a separate
 * load process with `concurrency` keep-alive requests in flight.
 */
export async function runEvaluateHttp(actors: number, options: { concurrency: number; durationMs: number; warmupMs: number }): Promise<HttpEvaluateResult> {
  const profile = process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles', 'sidecar')}`] : [];
  const sidecar = spawnJson('bench/scale-sidecar.ts', {}, [String(actors)], profile);
  const dir = mkdtempSync(join(tmpdir(), 'sg-eval-'));
  try {
    const info = await sidecar.next((l) => typeof l.url === 'string', 300_000);
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ url: info.url, token: info.token, bodies: info.bodies, ...options }));
    const load = spawnJson('bench/evaluate-load.ts', { LOADGEN_CONFIG_FILE: file });
    const answer = load.next((l) => typeof l.count === 'number', options.durationMs + options.warmupMs + 60_000);
    await sleep(options.warmupMs);
    const cpu0 = cpuMsOf(sidecar.child.pid!);
    const loadCpu0 = cpuMsOf(load.child.pid!);
    const wall0 = Date.now();
    await sleep(options.durationMs - 100);
    const sidecarCpuPercent = ((cpuMsOf(sidecar.child.pid!) - cpu0) / (Date.now() - wall0)) * 100;
    const loadCpuPercent = ((cpuMsOf(load.child.pid!) - loadCpu0) / (Date.now() - wall0)) * 100;
    const r = await answer;
    await load.stop();
    const latencies = r.latencies as number[];
    return {
      actors,
      concurrency: options.concurrency,
      decisionsPerSecond: (r.count as number) / (r.seconds as number),
      errors: r.errors as number,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      sidecarCpuPercent,
      loadCpuPercent,
    };
  } finally {
    await sidecar.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
