/**
 * docker-compose.yml is checked against the code (no Docker engine runs here): the three services, Redis
 * with AOF and fsync on every write, every service's environment accepted by that process's own config
 * loader, the ports published being the ones configured, the broker wired to the sidecar and both to Redis,
 * and a health check on each.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadBrokerConfig } from '../broker/config.ts';
import { loadSidecarConfig } from '../authz-sidecar/config.ts';

type Service = { command?: string[] | string; environment?: Record<string, string>; ports?: string[]; healthcheck?: { test: string[] }; depends_on?: Record<string, { condition: string }> };
const compose = parse(readFileSync(fileURLToPath(new URL('../docker-compose.yml', import.meta.url)), 'utf8')) as { services: Record<string, Service> };
const services = compose.services;

/** `${NAME:?message}` → a value, as `docker compose` would substitute from the environment. */
function substituted(env: Record<string, string> = {}): Record<string, string> {
  // `${VAR:-default}` becomes its default; `${VAR:?message}` (required) a placeholder value.
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{(\w+)(:[?-][^}]*)?\}/g, (_m, name: string, mod?: string) => (mod?.startsWith(':-') ? mod.slice(2) : `${name.toLowerCase()}-for-compose-test-0123456789`))]));
}
const published = (s: Service) => (s.ports ?? []).map((p) => p.split(':').slice(-2).map(Number) as [number, number]);

describe('docker-compose.yml', () => {
  it('has redis, sidecar and broker, each with a health check', () => {
    const base = Object.entries(services).filter(([, s]) => !(s as { profiles?: string[] }).profiles).map(([name]) => name);
    expect(base.sort()).toEqual(['broker', 'redis', 'sidecar']);
    for (const s of Object.values(services)) expect(s.healthcheck?.test.length).toBeGreaterThan(0);
  });

  it('has a `sentinel` profile: a replica of redis and three sentinels, reachable with the URL the header names', () => {
    const profiled = Object.entries(services).filter(([, s]) => (s as { profiles?: string[] }).profiles?.includes('sentinel')).map(([name]) => name);
    expect(profiled.sort()).toEqual(['redis-replica', 'sentinel-1', 'sentinel-2', 'sentinel-3']);
    expect([services['redis-replica']!.command].flat().join(' ')).toMatch(/--replicaof redis 6379/);
    for (const n of [1, 2, 3]) expect([services[`sentinel-${n}`]!.command].flat().join(' ')).toMatch(/sentinel monitor sgmaster redis 6379 2/);
    const header = readFileSync(fileURLToPath(new URL('../docker-compose.yml', import.meta.url)), 'utf8');
    const url = /REDIS_URL=(redis\+sentinel:\S+)/.exec(header)?.[1];
    const config = loadSidecarConfig({ REDIS_URL: url });
    expect(config.redis).toMatchObject({ mode: 'sentinel', masterName: 'sgmaster', sentinels: [{ host: 'sentinel-1', port: 26379 }, { host: 'sentinel-2', port: 26379 }, { host: 'sentinel-3', port: 26379 }] });
  });

  it('runs Redis with AOF and fsync on every write', () => {
    const cmd = [services.redis!.command].flat().join(' ');
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--appendfsync always/);
  });

  it('gives the sidecar an environment its config accepts, on the published port, with Redis', () => {
    const env = substituted(services.sidecar!.environment);
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['SIDECAR_PORT', 'REDIS_URL', 'AUTHZ_ADMIN_TOKEN', 'BROKER_TOKEN']));
    const config = loadSidecarConfig(env);
    expect(published(services.sidecar!)).toContainEqual([config.port, config.port]);
    expect(new URL(config.redisUrl!).hostname).toBe('redis');
    expect(services.sidecar!.depends_on?.redis?.condition).toBe('service_healthy');
    expect(services.sidecar!.healthcheck!.test.join(' ')).toContain(`:${config.port}/readyz`);
  });

  it('gives the broker an environment its config accepts, wired to the sidecar and Redis, on the published ports', () => {
    const env = substituted(services.broker!.environment);
    expect(Object.keys(env)).toEqual(expect.arrayContaining(['MQTT_PORT', 'MQTT_WS_PORT', 'SIDECAR_URL', 'REDIS_URL', 'BROKER_TOKEN']));
    const config = loadBrokerConfig(env);
    const ports = published(services.broker!);
    for (const port of [config.mqttPort, config.wsPort, config.metricsPort]) expect(ports).toContainEqual([port, port]);
    const sidecarUrl = new URL(config.sidecarUrl);
    expect(sidecarUrl.hostname).toBe('sidecar');
    expect(Number(sidecarUrl.port)).toBe(loadSidecarConfig(substituted(services.sidecar!.environment)).port);
    expect(new URL(config.redisUrl!).hostname).toBe('redis');
    expect(services.broker!.environment!.BROKER_TOKEN).toBe(services.sidecar!.environment!.BROKER_TOKEN);
    expect(services.broker!.depends_on?.sidecar?.condition).toBe('service_healthy');
    expect(services.broker!.healthcheck!.test.join(' ')).toContain(`:${config.metricsPort}/readyz`);
    // The unauthenticated metrics port is published on the host's loopback only.
    expect(services.broker!.ports).toContain(`127.0.0.1:${config.metricsPort}:${config.metricsPort}`);
  });
});
