/** REDIS_URL in its three forms, as both processes' config loaders read it (shared/redis-target.ts). */
import { describe, expect, it } from 'vitest';
import { loadBrokerConfig } from '../broker/config.ts';
import { loadSidecarConfig } from '../authz-sidecar/config.ts';
import { parseRedisUrl, redactRedisUrl } from '../shared/redis-target.ts';

describe('REDIS_URL', () => {
  it('parses one Redis, Sentinel and Cluster URLs', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379/2')).toEqual({ mode: 'single', url: 'redis://127.0.0.1:6379/2' });
    expect(parseRedisUrl('redis+sentinel://:s%40cret@h1:26379,h2:26380,[::1]:26381/sgmaster/3')).toEqual({
      mode: 'sentinel',
      sentinels: [{ host: 'h1', port: 26379 }, { host: 'h2', port: 26380 }, { host: '::1', port: 26381 }],
      masterName: 'sgmaster',
      password: 's@cret',
      db: 3,
    });
    expect(parseRedisUrl('redis+sentinel://h1:26379/mymaster')).toMatchObject({ mode: 'sentinel', password: null, db: 0 });
    expect(parseRedisUrl('redis+cluster://h1:7000,h2:7001,h3:7002')).toEqual({ mode: 'cluster', nodes: [{ host: 'h1', port: 7000 }, { host: 'h2', port: 7001 }, { host: 'h3', port: 7002 }], password: null });
  });

  it('refuses malformed URLs with a clear problem, on both processes, never echoing the password', () => {
    for (const bad of ['http://x:1', 'redis+sentinel://h1:26379', 'redis+sentinel://h1/m', 'redis+sentinel://h1:99999/m', 'redis+cluster://h1:7000/0', 'redis+sentinel://h1:1/m/16']) {
      expect(parseRedisUrl(bad)).toHaveProperty('problem');
    }
    expect(() => loadBrokerConfig({ BROKER_TOKEN: 'b'.repeat(20), REDIS_URL: 'redis+sentinel://:hunter2@h1/m' })).toThrow(/REDIS_URL/);
    expect(() => loadSidecarConfig({ REDIS_URL: 'redis+sentinel://:hunter2@h1/m' })).toThrow(/REDIS_URL: 'h1' is not host:port/);
    expect(redactRedisUrl('redis+sentinel://:hunter2@h1:1/m')).toBe('redis+sentinel://***@h1:1/m');
  });

  it('defaults REDIS_MIN_REPLICAS per mode and REDIS_BROKER_PREFIX', () => {
    expect(loadSidecarConfig({ REDIS_URL: 'redis://h:1' }).redisMinReplicas).toBe(0);
    expect(loadSidecarConfig({ REDIS_URL: 'redis+sentinel://h:1/m' }).redisMinReplicas).toBe(1);
    expect(loadSidecarConfig({ REDIS_URL: 'redis+cluster://h:1' }).redisMinReplicas).toBe(1);
    expect(loadSidecarConfig({ REDIS_URL: 'redis+cluster://h:1', REDIS_MIN_REPLICAS: '0' }).redisMinReplicas).toBe(0);
    expect(loadBrokerConfig({ BROKER_TOKEN: 'b'.repeat(20), REDIS_URL: 'redis://h:1' }).redisBrokerPrefix).toBe('sgb:');
    expect(() => loadBrokerConfig({ BROKER_TOKEN: 'b'.repeat(20), REDIS_URL: 'redis+cluster://h:1', REDIS_BROKER_PREFIX: '{b}:' })).toThrow(/hash tag/);
  });
});
