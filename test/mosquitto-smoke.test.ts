/**
 * The smoke test a user would run: `npm start` (sidecar + broker as two processes on the embedded stores),
 * then the mosquitto_sub / mosquitto_pub commands it prints, pasted as they are. Ports are picked free.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/free-port.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
let start: ChildProcess;
let output = '';
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (spawnSync('mosquitto_pub', ['--help']).error) throw new Error('mosquitto_pub not found on PATH: install it (apt-get install -y mosquitto-clients) — .ci/run does this');
  const [sidecar, mqtt, ws, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const env: NodeJS.ProcessEnv = { ...process.env, SIDECAR_PORT: String(sidecar), MQTT_PORT: String(mqtt), MQTT_WS_PORT: String(ws), BROKER_METRICS_PORT: String(metrics), LOG_LEVEL: 'warn' };
  delete env.AUTHZ_ADMIN_TOKEN;
  delete env.REDIS_URL;
  start = spawn('npm', ['start', '--silent'], { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  start.stdout!.on('data', (d) => (output += d));
  start.stderr!.on('data', (d) => (output += d));
  await waitFor(() => output.includes('ScopeGate is running') && output.includes('=====\n', output.indexOf('ScopeGate is running')), 60_000, () => output);
}, 90_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  if (start?.pid) {
    const exited = new Promise((r) => start.once('exit', r));
    process.kill(-start.pid, 'SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    try {
      process.kill(-start.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

function printed(prefix: string): string[] {
  return output.split('\n').map((l) => l.trim()).filter((l) => l.startsWith(prefix));
}

function shell(command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

async function waitFor(check: () => boolean, timeoutMs: number, describe: () => string = () => '') {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out; got:\n${describe().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('npm start + mosquitto clients', () => {
  it('prints commands that, pasted as they are, show the isolation', async () => {
    const [sub] = printed('mosquitto_sub ');
    const [acmePub, betaPub] = printed('mosquitto_pub ');
    expect(sub && acmePub && betaPub).toBeTruthy();

    const subscriber = spawn('bash', ['-c', sub!], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(subscriber);
    let received = '';
    subscriber.stdout!.on('data', (d) => (received += d));
    subscriber.stderr!.on('data', (d) => (received += d));
    // mosquitto_sub has no "subscribed" signal on stdout: publish until the first message arrives.
    await waitFor(
      () => {
        if (!received.includes('hello from acme')) void shell(acmePub!);
        return received.includes('hello from acme');
      },
      10_000,
      () => received,
    );
    expect(received).toContain('demo/chat/messages hello from acme');

    // Beta's publish at QoS 1: mosquitto_pub exits once the broker acknowledged (and routed) it. Then a
    // sentinel from acme: once it has arrived, beta's message would have arrived before it if it were
    // delivered at all, since the broker routes them in that order to the same subscriber.
    const beta = await shell(`${betaPub!} -q 1`);
    expect(beta.code).toBe(0);
    const sentinel = acmePub!.replace('hello from acme', 'sentinel after beta').replace('-i acme-pub', '-i acme-sentinel');
    expect(sentinel).not.toBe(acmePub);
    expect((await shell(`${sentinel} -q 1`)).code).toBe(0);
    await waitFor(() => received.includes('sentinel after beta'), 10_000, () => received);
    expect(received).not.toContain('hello from beta');
  });

  it('a wrong password is refused with CONNACK 4 (mosquitto_pub reports it and exits non-zero)', async () => {
    const [acmePub] = printed('mosquitto_pub ');
    const wrong = acmePub!.replace(/-P '[^']*'/, "-P 'not-the-token'");
    const r = await shell(wrong);
    expect(r.code).not.toBe(0);
    expect(r.stderr.toLowerCase()).toContain('bad user name or password');
  });

  it('a subscription to # is refused (SUBACK 0x80)', async () => {
    const [sub] = printed('mosquitto_sub ');
    const r = await shell(`${sub!.replace(/-t '[^']*'/, "-t '#'")} -W 5`);
    expect(`${r.stdout}${r.stderr}`.toLowerCase()).toMatch(/denied|refused|failed/);
  });
});
