import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScopeGateClient } from '../client/index.ts';
import type { Credentials, LoadgenConfig, PubSubPair } from './loadgen.ts';
import { cpuMsOf, mergeSorted, percentile, rssOf, sleep, spawnJson, untilIdle, type JsonChild } from './lib.ts';

export type PubSubKind = 'open' | 'rbac' | 'rbacNewTopic' | 'newTopic';

export interface PubSubWorld {
  /** Pairs for ScopeGate (credentials, client-view topics) and the equivalent pairs for plain Aedes. */
  scopegate: PubSubPair[];
  plain: PubSubPair[];
  /** The ScopeGate tenant the pairs live in (limits are set on it by the noisy-neighbour scenario). */
  tenantId: string;
}

/** Permissions of the rbac scenarios: 999 publish patterns, each matched by its own topics, and one subscribe. */
const RBAC_ZONES = 999;
/** Distinct topics the `rbac` publishers cycle through (two per zone): more than a decision cache holds. */
const RBAC_TOPICS = 2 * RBAC_ZONES;

/**
 * Builds the tenants of a pub/sub scenario in ScopeGate: one project, `pairs` access scopes, each with a
 * publisher and a subscriber actor granted one app. All scopes use the very same client topics (the point of
 * scoping); plain Aedes gets the equivalent distinct topics (what ScopeGate routes internally).
 *
 * - `open`: one topic, an open app.
 * - `rbac`: an rbac app whose role holds 1,000 topic permissions (999 publish patterns `rbench/zone-<k>/+`
 *   and the subscribe pattern `rbench/#`); each publisher cycles through 1,998 distinct topics, two under
 *   every publish pattern, so the decisions are spread over all the permissions and no cache holds them all.
 * - `rbacNewTopic`: the same app and permissions, every publish a topic never used before
 *   (`rbench/zone-<k>/<uuid>`).
 * - `newTopic`: an open app, every publish a topic never used before (`devices/<uuid>/telemetry`).
 */
export async function buildPubSubWorld(sg: ScopeGateClient, kind: PubSubKind, pairs: number): Promise<PubSubWorld> {
  const tag = `${kind.toLowerCase()}-${Math.random().toString(36).slice(2, 7)}`;
  const tenant = await sg.tenants.create({ name: `Bench ${tag}`, slug: `bench-${tag}`, kind: 'standard' });
  const ws = await sg.workspaces.create({ tenantId: tenant.id, name: 'Bench' });
  const project = await sg.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'Bench' });
  const api = sg.project(tenant.id, project.id);
  const rbac = kind === 'rbac' || kind === 'rbacNewTopic';
  const slug = kind === 'newTopic' ? 'devices' : rbac ? 'rbench' : 'bench';
  const app = await api.apps.create({ slug, name: slug, mode: rbac ? 'rbac' : 'open' });

  let roleId: string | null = null;
  if (rbac) {
    // 1,000 topic permissions on one role at the project's scope (inherited by every access scope below).
    const role = await sg.roles.create({ scopeId: project.scopeId as string, name: 'bench-1000' });
    roleId = role.id;
    const perms = Array.from({ length: RBAC_ZONES }, (_, k) => ({ scopeId: project.scopeId as string, action: 'publish', resourceType: 'topic', resourcePattern: `${slug}/zone-${k}/+` }));
    perms.push({ scopeId: project.scopeId as string, action: 'subscribe', resourceType: 'topic', resourcePattern: `${slug}/#` });
    const created = await sg.permissions.createBatch(perms);
    await sg.rolePermissions.createBatch(created.data.map((p) => ({ roleId: role.id, permissionId: p.id })));
  }

  // The client-view topics of one publisher, with `prefix` put in front of each for plain Aedes' namespace.
  const topicsFor = (prefix: string): PubSubPair['topics'] => {
    const at = (rest: string) => (prefix ? `${slug}/${prefix}/${rest}` : `${slug}/${rest}`);
    switch (kind) {
      case 'open':
        return { kind: 'cycle', topics: [at('room/data')] };
      case 'rbac':
        return { kind: 'cycle', topics: Array.from({ length: RBAC_TOPICS }, (_, j) => at(`zone-${j % RBAC_ZONES}/d${j}`)) };
      case 'rbacNewTopic':
        return { kind: 'unique', prefixes: Array.from({ length: RBAC_ZONES }, (_, k) => at(`zone-${k}`)), suffix: '' };
      case 'newTopic':
        return { kind: 'unique', prefixes: [prefix ? `${slug}/${prefix}` : slug], suffix: '/telemetry' };
    }
  };
  const filterFor = (prefix: string) => {
    const base = prefix ? `${slug}/${prefix}` : slug;
    return kind === 'open' ? `${base}/room/data` : kind === 'newTopic' ? `${base}/+/telemetry` : `${base}/#`;
  };

  const scopegate: PubSubPair[] = [];
  const plain: PubSubPair[] = [];
  for (let i = 0; i < pairs; i++) {
    const scope = await api.scopes.create({ slug: `s${i}`, name: `Scope ${i}` });
    const creds: Credentials[] = [];
    for (const role of ['pub', 'sub']) {
      const actor = await api.actors.create({ name: `${role}-${i}`, kind: 'device', accessScopeId: scope.accessScopeId });
      await api.apps.grant(app.appId, actor.actorId);
      if (roleId) {
        const m = await sg.memberships.create({ subjectId: actor.subjectId, scopeId: scope.accessScopeId });
        await sg.roleAssignments.create({ roleId, membershipId: m.id });
      }
      const token = await api.actors.issueToken(actor.actorId, { ttlSeconds: 86_400 });
      creds.push({ clientId: `${role}-${i}`, username: actor.actorId, password: token.token });
    }
    scopegate.push({ pub: creds[0]!, sub: creds[1]!, topics: topicsFor(''), filter: filterFor('') });
    plain.push({ pub: { clientId: `pub-${i}` }, sub: { clientId: `sub-${i}` }, topics: topicsFor(`s${i}`), filter: filterFor(`s${i}`) });
  }
  return { scopegate, plain, tenantId: tenant.id };
}

export interface PubSubResult {
  loadgenCpuPercent: number;
  brokerCpuPercent: number;
  deliveredPerCpuSecond: number;
  deliveredPerSecond: number;
  published: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `pairs` through `loadgens` load generator processes against the broker on `port`. */
export async function runPubSub(port: number, pairs: PubSubPair[], options: { durationMs: number; warmupMs: number; ratePerPublisher: number | null; loadgens: number; brokerPid: number }): Promise<PubSubResult> {
  const groups: PubSubPair[][] = Array.from({ length: options.loadgens }, () => []);
  pairs.forEach((p, i) => groups[i % options.loadgens]!.push(p));
  const procs: JsonChild[] = groups
    .filter((g) => g.length > 0)
    .map((g) => spawnJson('bench/loadgen.ts', { LOADGEN_CONFIG: JSON.stringify({ mode: 'pubsub', port, pairs: g, durationMs: options.durationMs, warmupMs: options.warmupMs, ratePerPublisher: options.ratePerPublisher } satisfies LoadgenConfig) }));
  try {
    await Promise.all(procs.map((p) => p.next((l) => l.event === 'ready' || l.event === 'error').then((l) => {
      if (l.event === 'error') throw new Error(`loadgen: ${l.message}`);
    })));
    for (const p of procs) p.send('start');
    const resultsPromise = Promise.all(procs.map((p) => p.next((l) => l.event === 'result' || l.event === 'error', options.durationMs + options.warmupMs + 60_000)));
    // The broker's CPU use over the measured window: near 100 % means the broker, not the load, is the limit.
    await sleep(options.warmupMs);
    const cpu0 = cpuMsOf(options.brokerPid);
    const wall0 = Date.now();
    await sleep(options.durationMs - 200);
    const brokerCpuMs = cpuMsOf(options.brokerPid) - cpu0;
    const brokerCpuPercent = (brokerCpuMs / (Date.now() - wall0)) * 100;
    const results = await resultsPromise;
    for (const r of results) if (r.event === 'error') throw new Error(`loadgen: ${r.message}`);
    const seconds = Math.max(...results.map((r) => r.seconds as number));
    const delivered = results.reduce((n, r) => n + (r.delivered as number), 0);
    const latencies = mergeSorted(results.map((r) => r.latencies as number[]));
    return {
      loadgenCpuPercent: Math.max(...results.map((r) => r.cpuPercent as number)),
      brokerCpuPercent,
      // Capacity per core: messages delivered per second of broker CPU. Robust to CPU steal on a shared
      // machine, where the broker may get less than a full core during a round.
      deliveredPerCpuSecond: delivered / seconds / (brokerCpuPercent / 100),
      deliveredPerSecond: delivered / seconds,
      published: results.reduce((n, r) => n + (r.published as number), 0),
      delivered,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
  }
}

export interface ConnectResult {
  connectsPerSecond: number;
  connected: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** CPU of the busiest load generator process during the run (it must not be the bottleneck). */
  loadgenCpuPercent: number;
  /** CPU time per CONNECT of the broker and (ScopeGate) the sidecar, µs. */
  brokerCpuUsPerConnect: number;
  sidecarCpuUsPerConnect: number;
}

/** Opens `clients` connections at full speed (bounded concurrency), holds them all, measures the broker's memory. */
export async function runConnect(port: number, brokerPid: number, clients: Credentials[], options: { loadgens: number; concurrency: number; sidecarPid?: number }): Promise<ConnectResult> {
  const groups: Credentials[][] = Array.from({ length: options.loadgens }, () => []);
  clients.forEach((c, i) => groups[i % options.loadgens]!.push(c));
  const dir = mkdtempSync(join(tmpdir(), 'sg-bench-'));
  const procs = groups.map((g, i) => {
    const file = join(dir, `connect-${i}.json`);
    writeFileSync(file, JSON.stringify({ mode: 'connect', port, clients: g, concurrency: options.concurrency } satisfies LoadgenConfig));
    return spawnJson('bench/loadgen.ts', { LOADGEN_CONFIG_FILE: file });
  });
  try {
    await Promise.all(procs.map((p) => p.next((l) => l.event === 'ready')));
    const rssBefore = rssOf(brokerPid);
    const brokerCpu0 = cpuMsOf(brokerPid);
    const sidecarCpu0 = options.sidecarPid ? cpuMsOf(options.sidecarPid) : 0;
    for (const p of procs) p.send('start');
    const results = await Promise.all(procs.map((p) => p.next((l) => l.event === 'result' || l.event === 'error', 300_000)));
    const brokerCpuMs = cpuMsOf(brokerPid) - brokerCpu0;
    const sidecarCpuMs = options.sidecarPid ? cpuMsOf(options.sidecarPid) - sidecarCpu0 : 0;
    for (const r of results) if (r.event === 'error') throw new Error(`loadgen: ${r.message}`);
    // Every connection is still open here: the broker holds them all.
    await new Promise((r) => setTimeout(r, 500));
    const rssAfter = rssOf(brokerPid);
    for (const p of procs) p.send('stop');
    await Promise.all(procs.map((p) => p.next((l) => l.event === 'stopped', 60_000)));
    // The broker (and sidecar) close 10,000 sessions after this: let them finish before the next round starts.
    await untilIdle([brokerPid, ...(options.sidecarPid ? [options.sidecarPid] : [])], { windowMs: 250, maxPercent: 5 });
    const connected = results.reduce((n, r) => n + (r.connected as number), 0);
    const loadgenCpuPercent = Math.max(...results.map((r) => r.cpuPercent as number));
    const seconds = Math.max(...results.map((r) => r.seconds as number));
    const latencies = mergeSorted(results.map((r) => r.latencies as number[]));
    return {
      connectsPerSecond: connected / seconds,
      connected,
      failed: results.reduce((n, r) => n + (r.failed as number), 0),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      bytesPerConnection: connected > 0 ? (rssAfter - rssBefore) / connected : NaN,
      loadgenCpuPercent,
      brokerCpuUsPerConnect: (brokerCpuMs * 1000) / Math.max(1, connected),
      sidecarCpuUsPerConnect: (sidecarCpuMs * 1000) / Math.max(1, connected),
    };
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Credentials for `count` connections spread over `actors` actors (each connection its own client id). */
export async function buildConnectClients(sg: ScopeGateClient, count: number, actors: number): Promise<{ scopegate: Credentials[]; plain: Credentials[] }> {
  const tag = Math.random().toString(36).slice(2, 7);
  const tenant = await sg.tenants.create({ name: `Connect ${tag}`, slug: `connect-${tag}`, kind: 'standard' });
  const ws = await sg.workspaces.create({ tenantId: tenant.id, name: 'Bench' });
  const project = await sg.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'Bench' });
  const api = sg.project(tenant.id, project.id);
  const scope = await api.scopes.create({ slug: 'fleet', name: 'Fleet' });
  const app = await api.apps.create({ slug: 'fleet', name: 'Fleet', mode: 'open' });
  const actorIds: string[] = [];
  for (let i = 0; i < actors; i++) {
    const actor = await api.actors.create({ name: `device-${i}`, kind: 'device', accessScopeId: scope.accessScopeId });
    await api.apps.grant(app.appId, actor.actorId);
    actorIds.push(actor.actorId);
  }
  // A token of its own for every connection: each CONNECT verifies a signature the sidecar has not seen.
  const scopegate: Credentials[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const i = next++;
        const actorId = actorIds[i % actorIds.length]!;
        scopegate[i] = { clientId: `c-${i}`, username: actorId, password: (await api.actors.issueToken(actorId, { ttlSeconds: 86_400 })).token };
      }
    }),
  );
  const plain = Array.from({ length: count }, (_, i) => ({ clientId: `c-${i}` }));
  return { scopegate, plain };
}
