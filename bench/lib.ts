import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));

/** With `--profile`, node arguments that make a process write V8 CPU profiles (open them in Chrome DevTools) to bench/profiles/<name>/. */
export function profileArgs(name: string): string[] {
  return process.argv.includes('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${join(root, 'bench', 'profiles', name)}`] : [];
}

/** A child process speaking JSON lines on stdout (loadgen, plain Aedes, engine comparison). */
export interface JsonChild {
  child: ChildProcess;
  /** Resolves with the next JSON line satisfying `predicate`. */
  next(predicate: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  send(line: string): void;
  stop(): Promise<void>;
}

export function spawnJson(script: string, env: Record<string, string>, args: string[] = [], nodeArgs: string[] = []): JsonChild {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, ...args], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, any>> = [];
  const waiters: Array<{ predicate: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }> = [];
  let partial = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    partial += d.toString();
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const text of parts) {
      let line: Record<string, any>;
      try {
        line = JSON.parse(text);
      } catch {
        line = { text };
      }
      const w = waiters.find((x) => x.predicate(line));
      if (w) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      } else lines.push(line);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 20_000) stderr = stderr.slice(-10_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    next(predicate, timeoutMs = 120_000) {
      const found = lines.find(predicate);
      if (found) {
        lines.splice(lines.indexOf(found), 1);
        return Promise.resolve(found);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${script}: no expected output within ${timeoutMs} ms\n${stderr.slice(-2000)}`)), timeoutMs);
        const onExit = () => reject(new Error(`${script} exited (${child.exitCode ?? child.signalCode}):\n${stderr.slice(-2000)}`));
        child.once('close', onExit);
        waiters.push({
          predicate,
          resolve: (l) => {
            clearTimeout(timer);
            child.off('close', onExit);
            resolve(l);
          },
        });
      });
    },
    send(line) {
      child.stdin!.write(`${line}\n`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** Resident memory of a process in bytes (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb * 1024;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function mergeSorted(arrays: number[][]): number[] {
  return arrays.flat().sort((a, b) => a - b);
}

export const round = (n: number, digits = 2) => (Number.isFinite(n) ? Math.round(n * 10 ** digits) / 10 ** digits : n);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** CPU time (user + system) a process has used so far, in ms (Linux). */
export function cpuMsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1000;
}

/**
 * CPU time a process has used so far, in ms with nanosecond resolution: the sum over its threads of the
 * scheduler's run time (/proc/<pid>/task/<tid>/schedstat, Linux). Tick-based accounting (cpuMsOf) counts in
 * 10 ms steps, too coarse for the cost of one admin write.
 */
export function cpuPreciseMsOf(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return ns / 1e6;
}

/**
 * Waits until the processes together use less than `maxPercent` of a core over a window of `windowMs`, and at
 * least `minMs` have passed; gives up after `maxMs`. What a round leaves behind (10,000 closes, a ledger's
 * session ends, garbage) must not run into the next round, where it competes for the same two cores.
 */
export async function untilIdle(pids: number[], o: { windowMs: number; maxPercent: number; minMs?: number; maxMs?: number }): Promise<{ ms: number; cpuPercent: number }> {
  const started = Date.now();
  const cpuOf = () => pids.reduce((ms, pid) => ms + cpuPreciseMsOf(pid), 0);
  for (;;) {
    const cpu0 = cpuOf();
    const wall0 = Date.now();
    await new Promise((r) => setTimeout(r, o.windowMs));
    const cpuPercent = ((cpuOf() - cpu0) / (Date.now() - wall0)) * 100;
    const ms = Date.now() - started;
    if ((cpuPercent < o.maxPercent && ms >= (o.minMs ?? 0)) || ms >= (o.maxMs ?? 30_000)) return { ms, cpuPercent };
  }
}
