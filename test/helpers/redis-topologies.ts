/**
 * Real Redis topologies for the Sentinel and Cluster tests, on free ports in a temporary directory:
 * master + replicas + three redis-sentinel processes, and a 3-master/3-replica Cluster made with
 * `redis-cli --cluster create`. Every process is killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

/** Sends one inline command, resolves with the raw reply ('' on failure). */
export function rawCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    const finish = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(buf);
    };
    const timer = setTimeout(finish, timeoutMs);
    sock.once('error', finish);
    sock.once('connect', () => sock.write(`${command}\r\n`));
    sock.on('data', (d) => {
      buf += d.toString();
      if (complete(buf)) finish();
    });
  });
}

/** Whether a RESP reply (simple, error, integer, bulk, or array of bulks) has fully arrived. */
function complete(reply: string): boolean {
  const bytes = Buffer.from(reply);
  let pos = 0;
  const line = () => {
    const end = bytes.indexOf('\r\n', pos);
    if (end < 0) return null;
    const text = bytes.toString('utf8', pos, end);
    pos = end + 2;
    return text;
  };
  const one = (): boolean => {
    const head = line();
    if (head === null) return false;
    if (head[0] === '$') {
      const n = Number(head.slice(1));
      if (n < 0) return true;
      if (bytes.length < pos + n + 2) return false;
      pos += n + 2;
      return true;
    }
    if (head[0] === '*') {
      const n = Number(head.slice(1));
      for (let i = 0; i < n; i++) if (!one()) return false;
      return true;
    }
    return true;
  };
  return one();
}

export interface RedisNode {
  port: number;
  dir: string;
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>;
  /** Starts the same node again (same port, directory and arguments). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function startNode(bin: 'redis-server' | 'redis-sentinel', root: string, name: string, args: (port: number, dir: string) => string[]): Promise<RedisNode> {
  const port = await freePort();
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  let child: ChildProcess | null = null;
  const launch = async () => {
    const c = spawn(bin, args(port, dir), { stdio: 'ignore', cwd: dir });
    running.add(c);
    c.once('exit', () => running.delete(c));
    child = c;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`${bin} ${name} exited (${c.exitCode}) on port ${port}`);
      if ((await rawCommand(port, 'PING', 300)).startsWith('+PONG')) return;
      await sleep(50);
    }
    throw new Error(`${bin} ${name} did not answer PING on port ${port}`);
  };
  const terminate = async (signal: NodeJS.Signals) => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill(signal);
    await exited;
  };
  await launch();
  return {
    port,
    dir,
    kill: () => terminate('SIGKILL'),
    async restart() {
      await terminate('SIGKILL');
      for (let i = 0; ; i++) {
        try {
          return await launch();
        } catch (err) {
          if (i > 10) throw err;
          await sleep(250);
        }
      }
    },
    stop: () => terminate('SIGTERM'),
  };
}

const serverArgs = (port: number, dir: string, extra: string[] = []) => [
  '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always',
  '--logfile', join(dir, 'redis.log'), '--daemonize', 'no', ...extra,
];

export interface SentinelSet {
  master: RedisNode;
  replicas: RedisNode[];
  sentinels: RedisNode[];
  masterName: string;
  /** `redis+sentinel://127.0.0.1:p1,...,127.0.0.1:p3/<masterName>` */
  url: string;
  /** Port of the master as the sentinels currently see it. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/** A master with `replicas` replicas (AOF, fsync always) watched by three sentinels (quorum 2, down after 1 s). */
export async function startSentinelSet(replicas = 2, masterName = 'sgmaster'): Promise<SentinelSet> {
  const root = mkdtempSync(join(tmpdir(), 'scopegate-sentinel-'));
  const master = await startNode('redis-server', root, 'master', (p, d) => serverArgs(p, d));
  const reps = await Promise.all(Array.from({ length: replicas }, (_, i) => startNode('redis-server', root, `replica-${i}`, (p, d) => serverArgs(p, d, ['--replicaof', '127.0.0.1', String(master.port)]))));
  // Replicas in sync before the sentinels look.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !(await rawCommand(master.port, 'INFO replication')).includes(`connected_slaves:${replicas}`)) await sleep(100);
  const sentinels = await Promise.all(
    [0, 1, 2].map((i) =>
      startNode('redis-sentinel', root, `sentinel-${i}`, (p, d) => {
        const conf = join(d, 'sentinel.conf');
        writeFileSync(
          conf,
          [
            `port ${p}`,
            'bind 127.0.0.1',
            `dir ${d}`,
            `logfile ${join(d, 'sentinel.log')}`,
            `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 2`,
            `sentinel down-after-milliseconds ${masterName} 1000`,
            `sentinel failover-timeout ${masterName} 5000`,
            `sentinel parallel-syncs ${masterName} 1`,
            '',
          ].join('\n'),
          { flag: 'wx' },
        );
        return [conf];
      }),
    ),
  );
  const url = `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`;
  return {
    master,
    replicas: reps,
    sentinels,
    masterName,
    url,
    async currentMasterPort() {
      for (const s of sentinels) {
        const reply = await rawCommand(s.port, `SENTINEL get-master-addr-by-name ${masterName}`);
        const m = /\r\n(\d+)\r\n$/.exec(reply);
        if (m) return Number(m[1]);
      }
      return 0;
    },
    async stop() {
      await Promise.all([...sentinels, ...reps, master].map((n) => n.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

export interface ClusterSet {
  nodes: RedisNode[];
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  url: string;
  /** Ports of the current masters (CLUSTER NODES from any live node). */
  masterPorts(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Six nodes made into 3 masters + 3 replicas by `redis-cli --cluster create` (node timeout 1 s). */
export async function startClusterSet(): Promise<ClusterSet> {
  const root = mkdtempSync(join(tmpdir(), 'scopegate-cluster-'));
  const nodes = await Promise.all(
    Array.from({ length: 6 }, async (_, i) => {
      // The cluster bus port is chosen like the client port (below the kernel's ephemeral range): Redis' default,
      // the client port + 10,000, falls inside that range for most ports freePort picks, where an outgoing
      // connection's source port can hold it ("redis-server node-2 exited (1)" in CI).
      const busPort = await freePort();
      return startNode('redis-server', root, `node-${i}`, (p, d) => serverArgs(p, d, ['--cluster-enabled', 'yes', '--cluster-port', String(busPort), '--cluster-config-file', join(d, 'nodes.conf'), '--cluster-node-timeout', '1000']));
    }),
  );
  const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stdout}\n${create.stderr}`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const infos = await Promise.all(nodes.map((n) => rawCommand(n.port, 'CLUSTER INFO')));
    if (infos.every((i) => i.includes('cluster_state:ok'))) break;
    await sleep(100);
  }
  const set: ClusterSet = {
    nodes,
    url: `redis+cluster://${nodes.slice(0, 3).map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async masterPorts() {
      for (const n of nodes) {
        const reply = await rawCommand(n.port, 'CLUSTER NODES', 1_000);
        if (!reply.includes('master')) continue;
        return reply
          .split('\n')
          .filter((l) => / master /.test(` ${l.split(' ')[2]?.replace(/,/g, ' ')} `) && !l.includes('fail'))
          .map((l) => Number(/:(\d+)@/.exec(l)?.[1]));
      }
      return [];
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(root, { recursive: true, force: true });
    },
  };
  return set;
}
