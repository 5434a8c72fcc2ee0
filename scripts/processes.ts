import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * The project's entry points (sidecar, broker) started as real child processes, ready when their log says
 * so: shared by the tests and the bench, so both start the processes the same way.
 */

const root = fileURLToPath(new URL('..', import.meta.url));

export interface RunningProcess {
  child: ChildProcess;
  /** Every log line (JSON-parsed when possible) the process wrote so far. */
  lines: Array<Record<string, unknown>>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
}

/**
 * Starts one of the project's entry points as a real process (`node --import tsx <script>`) and resolves
 * with the first log line matching `ready`; rejects with the process output if it exits or times out first.
 */
export function startProcess(script: string, env: Record<string, string>, ready: (line: Record<string, unknown>) => boolean, timeoutMs = 20_000, nodeArgs: string[] = []): Promise<RunningProcess & { readyLine: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], { cwd: root, env: { PATH: process.env.PATH ?? '', LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: Array<Record<string, unknown>> = [];
    let output = '';
    let done = false;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const handle: RunningProcess = {
      child,
      lines,
      async stop() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        await exited;
      },
      async kill() {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await exited;
      },
    };
    const timer = setTimeout(() => finish(new Error(`${script} not ready within ${timeoutMs} ms:\n${output.slice(-3000)}`)), timeoutMs);
    function finish(err: Error | null, line?: Record<string, unknown>) {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        child.kill('SIGKILL');
        reject(err);
      } else resolve({ ...handle, readyLine: line! });
    }
    let partial = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.length > 100_000) output = output.slice(-50_000);
      partial += chunk.toString();
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts) {
        let line: Record<string, unknown>;
        try {
          line = JSON.parse(text) as Record<string, unknown>;
        } catch {
          line = { msg: text };
        }
        lines.push(line);
        if (lines.length > 5_000) lines.splice(0, 1_000);
        if (!done && ready(line)) finish(null, line);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => finish(new Error(`${script} exited (${signal ?? code}) before it was ready:\n${output.slice(-3000)}`)));
  });
}

// 60 s: on a shared 2-core machine under load, starting node + tsx alone was measured at ~10 s.
export async function startSidecarProcess(env: Record<string, string>, nodeArgs: string[] = []) {
  const p = await startProcess('authz-sidecar/main.ts', { SIDECAR_PORT: '0', SIDECAR_HOST: '127.0.0.1', ...env }, (l) => typeof l.port === 'number' && String(l.msg).includes('listening'), 60_000, nodeArgs);
  return { ...p, port: p.readyLine.port as number, url: `http://127.0.0.1:${p.readyLine.port as number}` };
}

export async function startBrokerProcess(env: Record<string, string>, nodeArgs: string[] = []) {
  const p = await startProcess('broker/main.ts', { MQTT_PORT: '0', MQTT_WS_PORT: '0', BROKER_METRICS_PORT: '0', MQTT_HOST: '127.0.0.1', ...env }, (l) => typeof l.tcpPort === 'number', 60_000, nodeArgs);
  return { ...p, tcpPort: p.readyLine.tcpPort as number, metricsPort: p.readyLine.metricsPort as number, url: `mqtt://127.0.0.1:${p.readyLine.tcpPort as number}` };
}
