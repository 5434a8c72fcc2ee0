/**
 * `npm start`: runs the sidecar and the broker as two processes for a first run (embedded stores unless
 * REDIS_URL is set), generates the admin and broker tokens when they are not set, creates a demo actor pair
 * and prints ready-to-paste curl, mosquitto_sub and mosquitto_pub commands. Ctrl-C / SIGTERM stops both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ScopeGateClient } from '../client/index.ts';
import { setupDemo } from '../cli/demo.ts';
import { describeListenFailure, probePort } from '../shared/listen.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = { ...process.env };
const generatedAdmin = !env.AUTHZ_ADMIN_TOKEN;
env.AUTHZ_ADMIN_TOKEN ||= `sga_${randomBytes(24).toString('base64url')}`;
env.BROKER_TOKEN ||= `sgb_${randomBytes(24).toString('base64url')}`;
const sidecarPort = Number(env.SIDECAR_PORT || 8080);
const mqttPort = Number(env.MQTT_PORT || 1883);
env.SIDECAR_PORT = String(sidecarPort);
env.MQTT_PORT = String(mqttPort);
env.SIDECAR_URL ||= `http://127.0.0.1:${sidecarPort}`;
// In a terminal the banner is what a first-time user reads; per-request info lines would scroll it away.
const quietLogs = !env.LOG_LEVEL && process.stdout.isTTY === true;
if (quietLogs) env.LOG_LEVEL = 'warn';

const children: ChildProcess[] = [];
function run(name: string, script: string): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: root, env, stdio: ['ignore', 'inherit', 'inherit'] });
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(`${name} exited (${signal ?? code}); stopping.\n`);
      void stop(code ?? 1);
    }
  });
  children.push(child);
  return child;
}

let stopping = false;
async function stop(code: number): Promise<void> {
  stopping = true;
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGTERM');
          setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
        }),
    ),
  );
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

async function waitForPort(port: number, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} did not come up on port ${port} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Every port both processes will bind, checked before anything starts: a port in use would otherwise let the
 * banner point at whatever already listens there (another ScopeGate, say) instead of naming the conflict.
 */
async function portProblems(): Promise<string[]> {
  const sidecarHost = env.SIDECAR_HOST?.trim() || '0.0.0.0';
  const brokerHost = env.MQTT_HOST?.trim() || '0.0.0.0';
  const wanted: Array<[number, string, string]> = [
    [sidecarPort, sidecarHost, 'SIDECAR_PORT'],
    [mqttPort, brokerHost, 'MQTT_PORT'],
    [Number(env.MQTT_WS_PORT || 8083), brokerHost, 'MQTT_WS_PORT'],
    [Number(env.BROKER_METRICS_PORT || 9464), env.BROKER_METRICS_HOST?.trim() || '127.0.0.1', 'BROKER_METRICS_PORT'],
  ];
  const problems: string[] = [];
  for (const [port, host, variable] of wanted) {
    if (!Number.isInteger(port) || port < 0 || port > 65535) continue; // the process's own config check names it
    const err = await probePort(port, host);
    if (err) problems.push(describeListenFailure(err, port, host, variable));
  }
  return problems;
}

async function main(): Promise<void> {
  if (sidecarPort === 0 || mqttPort === 0) throw new Error('npm start needs fixed ports (SIDECAR_PORT and MQTT_PORT must not be 0); run start:sidecar / start:broker for ephemeral ports');
  const busy = await portProblems();
  if (busy.length > 0) throw new Error(`cannot start, nothing was started:\n${busy.map((p) => `  - ${p}`).join('\n')}`);
  run('authz-sidecar', 'authz-sidecar/main.ts');
  await waitForPort(sidecarPort, 'authz-sidecar');
  run('broker', 'broker/main.ts');
  await waitForPort(mqttPort, 'broker');
  if (Number(env.MQTT_WS_PORT || 8083) !== 0) await waitForPort(Number(env.MQTT_WS_PORT || 8083), 'broker (WebSocket)');

  const client = new ScopeGateClient({ baseUrl: `http://127.0.0.1:${sidecarPort}`, token: env.AUTHZ_ADMIN_TOKEN! });
  // A fixed suffix: against Redis the demo of an earlier run is found and reused (with fresh tokens).
  const demo = await setupDemo(client, { mqttPort, suffix: 'demo' });
  const lines = [
    '',
    '================ ScopeGate is running ================',
    `HTTP API  http://127.0.0.1:${sidecarPort}   (OpenAPI: /openapi.json)`,
    `MQTT      tcp://127.0.0.1:${mqttPort}   ws://127.0.0.1:${env.MQTT_WS_PORT || 8083}`,
    generatedAdmin ? `Admin token (generated for this run; set AUTHZ_ADMIN_TOKEN to choose one):\n  ${env.AUTHZ_ADMIN_TOKEN}` : 'Admin token: from AUTHZ_ADMIN_TOKEN',
    ...(generatedAdmin && env.REDIS_URL
      ? ['  REDIS_URL is set, so your data outlives this run, but this admin token does not: the next start prints a', '  new one and this one stops working. Set AUTHZ_ADMIN_TOKEN to keep the same token across restarts.']
      : []),
    '',
    'Try the API:',
    `  curl -s http://127.0.0.1:${sidecarPort}/v1/tenants -H 'Authorization: Bearer ${generatedAdmin ? env.AUTHZ_ADMIN_TOKEN : '$AUTHZ_ADMIN_TOKEN'}'`,
    '',
    demo.reused
      ? 'Demo: the two tenants (acme-demo, beta-demo) of an earlier run, reused with new tokens; run these:'
      : 'Demo: two tenants (acme-demo, beta-demo) created just now; run these:',
    ...demo.commands.map((c) => `  ${c}`),
    quietLogs ? 'Logs: warnings and errors only in this terminal (set LOG_LEVEL=info to see every decision).' : '',
    env.REDIS_URL ? '' : '\nEmbedded stores (REDIS_URL unset): nothing is durable; everything above is gone when you stop.',
    '=====================================================',
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`npm start failed: ${(e as Error).message}\n`);
  void stop(1);
});
