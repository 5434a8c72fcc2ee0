/**
 * Mosquitto 2 (Debian's `mosquitto`) as the broker users would otherwise pick, started for `npm run bench`
 * with what a multi-tenant Mosquitto setup uses: a listener with a `mount_point` (Mosquitto's per-listener
 * topic prefix, its nearest thing to a scope). Reported beside plain Aedes; there is no target yet.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from '../scripts/free-port.ts';

export interface RunningMosquitto {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** The mosquitto binary on PATH (or /usr/sbin, where Debian puts it), or null when it is not installed. */
export function findMosquitto(): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, 'mosquitto'), constants.X_OK);
      return join(dir, 'mosquitto');
    } catch {
      /* next */
    }
  }
  return null;
}

export async function startMosquitto(binary: string): Promise<RunningMosquitto> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-mosquitto-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, [`listener ${port} 127.0.0.1`, 'mount_point bench-tenant/', 'allow_anonymous true', 'persistence false', 'log_dest none', 'set_tcp_nodelay true', ''].join('\n'));
  const child = spawn(binary, ['-c', conf], { stdio: 'ignore' });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`mosquitto did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
