/**
 * A newcomer's first hour (issue 16): ports in use are named before anything starts, the tour script runs
 * against `npm start` to the end, and against Redis a second start reuses the demo and says what happened to
 * the admin token.
 */
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { launchNpmStart, untilRunning, type NpmStart } from './helpers/npm-start.ts';
import { startRedis, type RedisHandle } from './helpers/redis-server.ts';
import { freePort } from './helpers/free-port.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const cleanup: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

function occupy(port: number, host = '0.0.0.0'): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, host, () => resolve(s));
  });
}

async function started(env: NodeJS.ProcessEnv = {}): Promise<NpmStart> {
  const s = await launchNpmStart(env);
  cleanup.push(() => s.stop());
  return s;
}

describe('ports in use', () => {
  for (const [which, variable] of [
    ['mqtt', 'MQTT_PORT'],
    ['ws', 'MQTT_WS_PORT'],
    ['sidecar', 'SIDECAR_PORT'],
  ] as const) {
    it(`${variable} taken: npm start names the port and the variable, starts nothing and prints no banner`, async () => {
      const port = await freePort();
      const blocker = await occupy(port);
      cleanup.push(() => new Promise((r) => blocker.close(r)));
      const s = await started({ [variable]: String(port) });
      const code = await s.exited;
      expect(code).not.toBe(0);
      expect(s.output()).toContain(`port ${port} is in use`);
      expect(s.output()).toContain(`set ${variable}`);
      expect(s.output()).not.toContain('ScopeGate is running');
      expect(s.output()).not.toContain('mosquitto_sub');
      void which;
    });
  }

  it('the broker alone with its WebSocket port taken exits with one clear line, not a crash trace', async () => {
    const port = await freePort();
    const blocker = await occupy(port, '127.0.0.1');
    cleanup.push(() => new Promise((r) => blocker.close(r)));
    const child = spawn(process.execPath, ['--import', 'tsx', 'broker/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', MQTT_PORT: '0', MQTT_WS_PORT: String(port), BROKER_METRICS_PORT: '0', MQTT_HOST: '127.0.0.1', BROKER_TOKEN: 'b'.repeat(24), SIDECAR_URL: 'http://127.0.0.1:9' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(out).toContain(`port ${port} is in use`);
    expect(out).toContain('set MQTT_WS_PORT');
    expect(out).not.toMatch(/Unhandled 'error' event|\n\s+at /);
  });

  it('a second npm start while one runs names the conflict instead of a token error', async () => {
    const first = await started();
    await untilRunning(first);
    const second = await started({
      SIDECAR_PORT: String(first.ports.sidecar),
      MQTT_PORT: String(first.ports.mqtt),
      MQTT_WS_PORT: String(first.ports.ws),
      BROKER_METRICS_PORT: String(first.ports.metrics),
    });
    await second.exited;
    const out = second.output();
    expect(out).toContain(`port ${first.ports.sidecar} is in use`);
    expect(out).toContain(`port ${first.ports.mqtt} is in use`);
    expect(out).not.toContain('bearer token is not valid');
    expect(out).not.toContain('ScopeGate is running');

    // The tour runs end to end against the first one (the README shows the same script).
    const tour = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('bash', ['scripts/tour.sh'], {
        cwd: root,
        env: { ...process.env, AUTHZ_ADMIN_TOKEN: /Admin token[^\n]*\n\s+(\S+)/.exec(first.output())![1], SIDECAR_URL: `http://127.0.0.1:${first.ports.sidecar}`, MQTT_PORT: String(first.ports.mqtt) },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', (d) => (text += d));
      child.once('exit', (code) => resolve({ code, out: text }));
    });
    expect(tour.out).toContain('Done: every answer was the one expected');
    expect(tour.out).toContain('deploy   environment  at');
    expect(tour.out).toMatch(/customer-a's subscriber got: my-app\/chat\/messages from customer-a/);
    expect(tour.code).toBe(0);
  }, 120_000);
});

describe('Redis unreachable at start', () => {
  it('the sidecar names the URL without its password and the cause, in one line, without a stack', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'authz-sidecar/main.ts'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', SIDECAR_PORT: '0', SIDECAR_HOST: '127.0.0.1', LOG_LEVEL: 'error', REDIS_URL: `redis://app:s3cret-pw@127.0.0.1:${port}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code).toBe(1);
    expect(out).toContain(`cannot reach Redis at redis://***@127.0.0.1:${port} (ECONNREFUSED)`);
    expect(out).not.toContain('s3cret-pw');
    expect(out).not.toMatch(/\n\s+at /);
  }, 60_000);
});

describe('npm start on Redis', () => {
  let redis: RedisHandle;
  it('says the generated admin token lasts one run, and a second start reuses the demo tenants', async () => {
    redis = await startRedis();
    cleanup.push(() => redis.stop());
    const first = await started({ REDIS_URL: redis.url });
    const out1 = await untilRunning(first);
    expect(out1).toContain('created just now');
    expect(out1).toContain('Set AUTHZ_ADMIN_TOKEN to keep the same token across restarts');
    await first.stop();

    const token = 'sga_fixed_token_for_this_test_0123456789';
    const second = await started({ REDIS_URL: redis.url, AUTHZ_ADMIN_TOKEN: token });
    const out2 = await untilRunning(second);
    expect(out2).toContain('of an earlier run, reused with new tokens');
    expect(out2).not.toContain('Set AUTHZ_ADMIN_TOKEN to keep');
    const tenants = (await (await fetch(`http://127.0.0.1:${second.ports.sidecar}/v1/tenants?limit=100`, { headers: { authorization: `Bearer ${token}` } })).json()) as { data: Array<{ slug: string }> };
    expect(tenants.data.map((t) => t.slug).sort()).toEqual(['acme-demo', 'beta-demo']);
    await second.stop();
  }, 120_000);
});
