import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './free-port.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface NpmStart {
  ports: { sidecar: number; mqtt: number; ws: number; metrics: number };
  env: NodeJS.ProcessEnv;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the exit code once `npm start` has exited. */
  exited: Promise<number | null>;
  /** SIGTERM to the whole process group, SIGKILL after 10 s. */
  stop(): Promise<void>;
}

/** `npm start` as a user runs it, on free ports, as its own process group; `env` is added to the environment. */
export async function launchNpmStart(env: NodeJS.ProcessEnv = {}): Promise<NpmStart> {
  const ports = { sidecar: await freePort(), mqtt: await freePort(), ws: await freePort(), metrics: await freePort() };
  const full: NodeJS.ProcessEnv = {
    ...process.env,
    SIDECAR_PORT: String(ports.sidecar),
    MQTT_PORT: String(ports.mqtt),
    MQTT_WS_PORT: String(ports.ws),
    BROKER_METRICS_PORT: String(ports.metrics),
    LOG_LEVEL: 'warn',
    ...env,
  };
  if (!('AUTHZ_ADMIN_TOKEN' in env)) delete full.AUTHZ_ADMIN_TOKEN;
  if (!('REDIS_URL' in env)) delete full.REDIS_URL;
  const child: ChildProcess = spawn('npm', ['start', '--silent'], { cwd: root, env: full, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    ports,
    env: full,
    output: () => output,
    exited,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        return;
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
  };
}

/** Resolves once the banner is complete; rejects with the output if `npm start` exits or times out first. */
export async function untilRunning(start: NpmStart, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void start.exited.then(() => (exited = true));
  for (;;) {
    const out = start.output();
    const at = out.indexOf('ScopeGate is running');
    if (at >= 0 && out.includes('=====\n', at)) return out;
    if (exited || Date.now() > deadline) throw new Error(`npm start did not come up:\n${out.slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
