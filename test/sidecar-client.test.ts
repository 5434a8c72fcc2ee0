/**
 * The broker's client of the sidecar: CONNECTs that arrive together are decided in one batch request, each
 * answered exactly as on its own and in its own order; a sidecar that is gone is SidecarUnavailableError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SidecarClient, SidecarUnavailableError } from '../broker/sidecar-client.ts';
import { LoginThrottle } from '../authz-sidecar/credentials/login-throttle.ts';
import { createSidecar } from '../authz-sidecar/sidecar.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { ScopeGateClient } from '../client/index.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { createActor, createProject } from './helpers/system.ts';

const { logger, lines } = captureLogs('info');
let sidecar: Awaited<ReturnType<typeof createSidecar>>;
let url: string;

beforeAll(async () => {
  sidecar = await createSidecar({ store: new MemoryPolicyStore(), adminToken: 'sc-admin-token-0123456789', brokerToken: 'sc-broker-token-0123456789', logger, throttle: new LoginThrottle({ freeAttempts: 1_000 }) });
  url = `http://127.0.0.1:${await sidecar.listen(0)}`;
});
afterAll(() => sidecar?.close());

describe('SidecarClient.connect', () => {
  it('decides CONNECTs that arrive together in few calls, each as on its own, in order', async () => {
    const sg = new ScopeGateClient({ baseUrl: url, token: 'sc-admin-token-0123456789' });
    const { api } = await createProject(sg, 'batch');
    const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const actors = await Promise.all(Array.from({ length: 10 }, (_, i) => createActor(api, `a${i}`, scope.accessScopeId, [app.appId])));
    const client = new SidecarClient(url, 'sc-broker-token-0123456789', 2_000);
    const requests = actors.flatMap((a, i) => [
      { clientId: `ok-${i}`, username: a.actorId, password: a.token },
      { clientId: `bad-${i}`, username: a.actorId, password: 'wrong' },
    ]);
    const before = lines.length;
    const answers = await Promise.all(requests.map((r) => client.connect(r)));
    answers.forEach((a, i) => {
      if (i % 2 === 0) expect(a).toMatchObject({ decision: 'allowed', session: { actorId: actors[i / 2]!.actorId, namespace: 'acme' } });
      else expect(a).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    });
    // Far fewer calls than CONNECTs: the first few go at once (the line is free), the rest wait and go as
    // one batch (one request id per call).
    const decided = lines.slice(before).filter((l) => l.msg === 'mqtt connect decision');
    expect(decided).toHaveLength(20);
    expect(new Set(decided.map((l) => l.requestId)).size).toBeLessThanOrEqual(5);
    client.close();
  });

  it('gathers CONNECTs that follow a call within its window into one call; after a quiet spell one goes at once', async () => {
    const sg = new ScopeGateClient({ baseUrl: url, token: 'sc-admin-token-0123456789' });
    const { api } = await createProject(sg, 'window');
    const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const actor = await createActor(api, 'paced', scope.accessScopeId, [app.appId]);
    // A wide window, so that how fast this machine runs cannot decide which call a CONNECT lands in.
    const windowMs = 2_000;
    const client = new SidecarClient(url, 'sc-broker-token-0123456789', 5_000, windowMs);
    const callsOf = (from: number) => new Set(lines.slice(from).filter((l) => l.msg === 'mqtt connect decision').map((l) => l.requestId)).size;
    const request = (i: number) => ({ clientId: `paced-${i}`, username: actor.actorId, password: actor.token });

    const before = lines.length;
    await client.connect(request(0));
    // Ten more, one every 5 ms, each after the first call's answer: on a free line each would be a call of its own.
    const paced: Promise<unknown>[] = [];
    for (let i = 1; i <= 10; i++) {
      paced.push(client.connect(request(i)));
      await new Promise((r) => setTimeout(r, 5));
    }
    const answers = await Promise.all(paced);
    expect(answers.every((a) => (a as { decision: string }).decision === 'allowed')).toBe(true);
    expect(callsOf(before)).toBe(2);

    // A quiet spell longer than the window: the next CONNECT is not held back.
    await new Promise((r) => setTimeout(r, windowMs + 100));
    const started = performance.now();
    await client.connect(request(11));
    expect(performance.now() - started).toBeLessThan(windowMs / 2);
    expect(callsOf(before)).toBe(3);
    client.close();
  });

  it('answers a batch in which one decision throws: that entry fails alone, the others are decided', async () => {
    const sg = new ScopeGateClient({ baseUrl: url, token: 'sc-admin-token-0123456789' });
    const { api } = await createProject(sg, 'broken');
    const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const good = await createActor(api, 'good', scope.accessScopeId, [app.appId]);
    const broken = await createActor(api, 'broken', scope.accessScopeId, [app.appId]);
    const { secret, secretId } = await api.actors.issueSecret(broken.actorId);
    // A stored hash whose scrypt cost is not a power of two: verifying the secret throws inside the decision.
    await sidecar.writer.write({ principal: 'test' }, 'test.corrupt_secret', (tx) => {
      const rec = tx.must('actorSecret', secretId);
      tx.put({ ...rec, hash: rec.hash.replace(/^scrypt\$\d+\$/, 'scrypt$3$') });
    });
    const requests = [
      { clientId: 'good', username: good.actorId, password: good.token },
      { clientId: 'broken', username: broken.actorId, password: secret },
      { clientId: 'wrong', username: good.actorId, password: 'wrong' },
    ];
    const res = await fetch(`${url}/v1/broker/connect/batch`, { method: 'POST', headers: { authorization: 'Bearer sc-broker-token-0123456789', 'content-type': 'application/json' }, body: JSON.stringify({ requests }) });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: unknown[] };
    expect(results).toHaveLength(3);
    expect(results[0]).toMatchObject({ decision: 'allowed', session: { actorId: good.actorId } });
    expect(results[1]).toEqual({ error: { code: 'INTERNAL', message: 'Internal error.', details: [] } });
    expect(results[2]).toMatchObject({ decision: 'denied', reason: 'bad_credentials' });
    expect(lines.some((l) => l.msg === 'unexpected error in a batched connect decision' && l.actorId === broken.actorId)).toBe(true);

    // Through the broker's client: the broken CONNECT fails as "sidecar unavailable" (CONNACK 3), its neighbours do not.
    const client = new SidecarClient(url, 'sc-broker-token-0123456789', 2_000);
    const outcomes = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => client.connect(requests[i % 3]!)));
    outcomes.forEach((o, i) => {
      if (i % 3 === 1) expect(o.status === 'rejected' && o.reason instanceof SidecarUnavailableError).toBe(true);
      else expect(o).toMatchObject({ status: 'fulfilled', value: { decision: i % 3 === 0 ? 'allowed' : 'denied' } });
    });
    client.close();
  });

  it('rejects with SidecarUnavailableError when the sidecar cannot be reached', async () => {
    const client = new SidecarClient('http://127.0.0.1:9', 'sc-broker-token-0123456789', 500);
    await expect(Promise.all([client.connect({ clientId: 'a', username: 'x', password: 'y' }), client.connect({ clientId: 'b', username: 'x', password: 'y' })])).rejects.toBeInstanceOf(SidecarUnavailableError);
    client.close();
  });
});
