import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePort } from './free-port.ts';

export interface RedisHandle {
  url: string;
  port: number;
  dir: string;
  /** SIGTERM, wait for exit, remove the data directory. */
  stop(): Promise<void>;
  /** SIGKILL, wait for exit; the data directory is kept (for restart). */
  kill(): Promise<void>;
  /** Starts redis-server again on the same port and directory (AOF data survives) and waits for PING. */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  appendonly?: boolean;
  appendfsync?: 'always' | 'everysec';
}

const MISSING = 'redis-server not found on PATH: install it (apt-get install -y redis-server) — .ci/run does this';

/** A key prefix no other test uses. */
export function uniquePrefix(name: string): string {
  return `${name}:${randomBytes(6).toString('hex')}:`;
}

const running = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const c of running) c.kill('SIGKILL');
    });
  }
}

function findBinary(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* next */
    }
  }
  throw new Error(MISSING);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** One raw PING; resolves true on +PONG. */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), 500);
    sock.once('error', () => finish(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) finish(buf.startsWith('+PONG'));
    });
  });
}

function waitExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

function readLog(dir: string): string {
  try {
    return readFileSync(join(dir, 'redis.log'), 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

/**
 * Spawns redis-server on the port; resolves once it answers PING (≤ ~5 s). Rejects with `portInUse` when it
 * exited because the port was taken.
 */
async function spawnRedis(bin: string, port: number, dir: string, opts: StartRedisOptions): Promise<ChildProcess> {
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--dir', dir,
    '--appendonly', opts.appendonly ? 'yes' : 'no',
    '--appendfsync', opts.appendfsync ?? 'everysec',
    '--logfile', join(dir, 'redis.log'),
    '--daemonize', 'no',
  ];
  const child = spawn(bin, args, { stdio: 'ignore' });
  trackChild(child);
  let spawnError: Error | null = null;
  child.once('error', (e) => {
    spawnError = e;
  });
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (spawnError) {
      const code = (spawnError as NodeJS.ErrnoException).code;
      throw code === 'ENOENT' ? new Error(MISSING) : spawnError;
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = readLog(dir);
      const err = new Error(`redis-server exited (code ${child.exitCode}) on port ${port}: ${log}`) as Error & {
        portInUse?: boolean;
      };
      err.portInUse = /address already in use|Could not create server TCP listening socket/i.test(log);
      throw err;
    }
    if (await pingOnce(port)) return child;
    await sleep(50);
  }
  child.kill('SIGKILL');
  await waitExit(child);
  throw new Error(`redis-server on port ${port} did not answer PING within 5 s: ${readLog(dir)}`);
}

export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisHandle> {
  const bin = findBinary();
  const dir = mkdtempSync(join(tmpdir(), 'scopegate-redis-'));
  let child: ChildProcess | null = null;
  let port = 0;
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      child = await spawnRedis(bin, port, dir, opts);
      break;
    } catch (err) {
      if ((err as { portInUse?: boolean }).portInUse && attempt < 5) continue;
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  const terminate = async (signal: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) {
      const exited = waitExit(c);
      c.kill(signal);
      const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  };

  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      await terminate('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await terminate('SIGKILL');
    },
    async restart() {
      await terminate('SIGKILL');
      // The port was ours a moment ago; retry briefly in case the kernel has not released it yet.
      for (let attempt = 0; ; attempt++) {
        try {
          child = await spawnRedis(bin, port, dir, opts);
          return;
        } catch (err) {
          if ((err as { portInUse?: boolean }).portInUse && attempt < 20) {
            await sleep(250);
            continue;
          }
          throw err;
        }
      }
    },
  };
}
