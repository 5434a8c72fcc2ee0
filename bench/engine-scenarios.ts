import { spawnJson } from './lib.ts';

/** In-process evaluate() against casbin's enforce() on the same requests (bench/engine-bench.ts casbin). */
export async function runEngineComparison(msPerRound: number) {
  const p = spawnJson('bench/engine-bench.ts', {}, ['casbin', String(msPerRound)]);
  try {
    return (await p.next((l) => typeof l.scopegatePerSecond === 'number', 300_000)) as { scopegatePerSecond: number; casbinPerSecond: number; agreement: { disagreements: number } } & Record<string, unknown>;
  } finally {
    await p.stop();
  }
}

/** In-process evaluate() latency for a population of `actors` actors (bench/engine-bench.ts scale). */
export async function runInProcessScale(actors: number) {
  const p = spawnJson('bench/engine-bench.ts', {}, ['scale', String(actors)]);
  try {
    return (await p.next((l) => typeof l.meanUs === 'number', 600_000)) as { meanUs: number; p50Us: number; p99Us: number; buildSeconds: number; heapUsedMiB: number };
  } finally {
    await p.stop();
  }
}

/** Redis memory of the sidecar's policy data for `actors` actors (bench/policy-size.ts). */
export async function runPolicySize(actors: number) {
  const p = spawnJson('bench/policy-size.ts', {}, [String(actors)]);
  try {
    return (await p.next((l) => typeof l.usedMemoryBytes === 'number', 600_000)) as {
      actors: number;
      records: number;
      usedMemoryBytes: number;
      keyBytes: Record<string, number>;
      bytesPerActor: number;
      writeSeconds: number;
    };
  } finally {
    await p.stop();
  }
}
