/**
 * `REDIS_URL` in its three forms, parsed once for both processes:
 *
 *   redis://[user:password@]host:port[/db]  (or rediss://)            one Redis
 *   redis+sentinel://[:password@]h1:p1,h2:p2,h3:p3/<masterName>[/db]   Sentinel-managed master (ioredis Sentinel)
 *   redis+cluster://[:password@]h1:p1,h2:p2,h3:p3                      Redis Cluster (seed nodes)
 *
 * The password of a sentinel URL is the data nodes' password (what `requirepass` on master and replicas is);
 * sentinels themselves are reached without one.
 */
export interface HostPort {
  host: string;
  port: number;
}

export type RedisTarget =
  | { mode: 'single'; url: string }
  | { mode: 'sentinel'; sentinels: HostPort[]; masterName: string; password: string | null; db: number }
  | { mode: 'cluster'; nodes: HostPort[]; password: string | null };

export type RedisMode = RedisTarget['mode'];

/** Parses `REDIS_URL`; on a problem returns a message for ConfigError (never the password). */
export function parseRedisUrl(raw: string): RedisTarget | { problem: string } {
  const url = raw.trim();
  if (/^rediss?:\/\//.test(url)) return { mode: 'single', url };
  const m = /^redis\+(sentinel|cluster):\/\/(?:([^@/]*)@)?([^/]+)(?:\/(.*))?$/.exec(url);
  if (!m) return { problem: 'REDIS_URL must start with redis://, rediss://, redis+sentinel:// or redis+cluster://' };
  const [, kind, auth, hostList, path] = m as unknown as [string, string, string | undefined, string, string | undefined];
  const password = auth ? decodeURIComponent(auth.startsWith(':') ? auth.slice(1) : auth) || null : null;
  const hosts: HostPort[] = [];
  for (const part of hostList.split(',')) {
    const hp = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(part.trim());
    const port = hp ? Number(hp[2]) : NaN;
    if (!hp || port < 1 || port > 65535) return { problem: `REDIS_URL: '${part.slice(0, 60)}' is not host:port` };
    hosts.push({ host: hp[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (kind === 'cluster') {
    if (path) return { problem: 'REDIS_URL: a redis+cluster:// URL has no path (Redis Cluster has only db 0)' };
    return { mode: 'cluster', nodes: hosts, password };
  }
  const [masterName, dbText, ...extra] = (path ?? '').split('/');
  if (!masterName) return { problem: 'REDIS_URL: a redis+sentinel:// URL needs the master name as its path (/mymaster)' };
  if (extra.length > 0) return { problem: 'REDIS_URL: redis+sentinel:// path is /<masterName>[/db]' };
  const db = dbText === undefined || dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0 || db > 15) return { problem: 'REDIS_URL: the db of a redis+sentinel:// URL must be an integer 0–15' };
  return { mode: 'sentinel', sentinels: hosts, masterName: decodeURIComponent(masterName), password, db };
}

/** `REDIS_URL` from the environment: null when unset; a problem is noted when it does not parse. */
export function redisTargetFrom(value: string | undefined, problems: string[]): RedisTarget | null {
  if (!value || value.trim() === '') return null;
  const parsed = parseRedisUrl(value);
  if ('problem' in parsed) {
    problems.push(parsed.problem);
    return null;
  }
  return parsed;
}

/** The URL for logs: any password replaced. */
export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
