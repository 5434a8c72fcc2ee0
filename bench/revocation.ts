import mqtt from 'mqtt';
import { startScopeGate } from './system.ts';
import { summarize } from './write-cost.ts';

/**
 * Revocation latency: connected sessions, then one admin write each (alternately disabling the actor and
 * revoking its app grant); the time from sending the write to the broker enforcing it (the session closed,
 * or a publish to the app refused, which closes the connection). A revocation not enforced within 5 s is a
 * failure: it is counted, and kept in the percentiles as infinitely late (a p99 it reaches is reported as null).
 */
export async function runRevocation(count: number) {
  const sut = await startScopeGate();
  try {
    const sg = sut.sg;
    const tenant = await sg.tenants.create({ name: 'Revoke', slug: `revoke-${Math.random().toString(36).slice(2, 7)}`, kind: 'standard' });
    const ws = await sg.workspaces.create({ tenantId: tenant.id, name: 'W' });
    const project = await sg.projects.create({ tenantId: tenant.id, workspaceId: ws.id, name: 'P' });
    const api = sg.project(tenant.id, project.id);
    const scope = await api.scopes.create({ slug: 'fleet', name: 'Fleet' });
    const app = await api.apps.create({ slug: 'fleet', name: 'Fleet', mode: 'open' });
    const actors: Array<{ actorId: string; token: string }> = [];
    for (let i = 0; i < count; i++) {
      const a = await api.actors.create({ name: `r${i}`, kind: 'device', accessScopeId: scope.accessScopeId });
      await api.apps.grant(app.appId, a.actorId);
      actors.push({ actorId: a.actorId, token: (await api.actors.issueToken(a.actorId, { ttlSeconds: 3_600 })).token });
    }
    const clients = await Promise.all(
      actors.map((a, i) => mqtt.connectAsync(`mqtt://127.0.0.1:${sut.brokerPort}`, { protocolVersion: 4, reconnectPeriod: 0, clientId: `r${i}`, username: a.actorId, password: a.token })),
    );
    const latencies: number[] = [];
    for (let i = 0; i < count; i++) {
      const client = clients[i]!;
      const closed = new Promise<number>((resolve) => client.once('close', () => resolve(performance.now())));
      const byApp = i % 2 === 1;
      // Revoking the app keeps the session but refuses the app: the client keeps publishing to notice.
      const probe = byApp ? setInterval(() => client.publish('fleet/probe', 'x'), 1) : undefined;
      const t0 = performance.now();
      if (byApp) await api.apps.revoke(app.appId, actors[i]!.actorId);
      else await api.actors.update(actors[i]!.actorId, { disabled: true });
      const t1 = await Promise.race([closed, new Promise<number>((r) => setTimeout(() => r(Number.POSITIVE_INFINITY), 5_000))]);
      clearInterval(probe);
      latencies.push(t1 - t0);
    }
    for (const c of clients) c.end(true);
    return { ...summarize(latencies), kinds: 'alternately: actor disabled (session closed) / app grant revoked (next publish refused)' };
  } finally {
    await sut.stop();
  }
}
