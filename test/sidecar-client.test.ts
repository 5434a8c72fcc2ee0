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

  it('rejects with SidecarUnavailableError when the sidecar cannot be reached', async () => {
    const client = new SidecarClient('http://127.0.0.1:9', 'sc-broker-token-0123456789', 500);
    await expect(Promise.all([client.connect({ clientId: 'a', username: 'x', password: 'y' }), client.connect({ clientId: 'b', username: 'x', password: 'y' })])).rejects.toBeInstanceOf(SidecarUnavailableError);
    client.close();
  });
});
