/**
 * Operators' view: structured logs (a request id on every sidecar line about a request; client id, actor
 * and scope on every broker decision line) and Prometheus metrics on both processes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBrokerConfig } from '../broker/config.ts';
import { startBroker, type RunningBroker } from '../broker/server.ts';
import { createSidecar } from '../authz-sidecar/sidecar.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { ScopeGateClient } from '../client/index.ts';
import { connect, connackCode } from './helpers/mqtt.ts';
import { captureLogs } from './helpers/log-capture.ts';
import { createActor, createProject } from './helpers/system.ts';

const sidecarLog = captureLogs();
const brokerLog = captureLogs();
let sidecar: Awaited<ReturnType<typeof createSidecar>>;
let broker: RunningBroker;
let url: string;
let sg: ScopeGateClient;

beforeAll(async () => {
  sidecar = await createSidecar({ store: new MemoryPolicyStore(), adminToken: 'obs-admin-token-0123456789', brokerToken: 'obs-broker-token-0123456789', logger: sidecarLog.logger });
  const port = await sidecar.listen(0);
  url = `http://127.0.0.1:${port}`;
  const config = loadBrokerConfig({ MQTT_PORT: '0', MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', SIDECAR_URL: url, BROKER_TOKEN: 'obs-broker-token-0123456789' });
  broker = await startBroker(config, { metricsPort: 0, logger: brokerLog.logger });
  await broker.live.ready;
  sg = new ScopeGateClient({ baseUrl: url, token: 'obs-admin-token-0123456789' });
});
afterAll(async () => {
  await broker?.close();
  await sidecar?.close();
});

describe('logs and metrics', () => {
  it('carry the request id, the decision context, and count what happened', async () => {
    const { api, orgId } = await createProject(sg, 'obs');
    const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const actor = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
    const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
    const c = await connect(mqttUrl, actor.actorId, actor.token);
    expect(await c.subscribe(['my-app/x', '#'])).toEqual([0, 128]);
    await c.publish('my-app/x', 'hello');
    await c.next();
    expect(await connackCode(mqttUrl, actor.actorId, 'wrong')).toBe(4);
    await c.end();

    // Sidecar: every line about a request names it.
    const requestLines = sidecarLog.lines.filter((l) => l.msg === 'request' || l.msg === 'mqtt connect decision');
    expect(requestLines.length).toBeGreaterThan(5);
    for (const l of requestLines) expect(l.requestId).toEqual(expect.any(String));
    // Broker: decision lines carry client id, actor and scope.
    const allowed = brokerLog.lines.find((l) => l.msg === 'connect allowed')!;
    expect(allowed).toMatchObject({ actorId: actor.actorId, scopeId: scope.accessScopeId, tenantId: orgId });
    expect(String(allowed.clientId)).toContain(actor.actorId);
    const refused = brokerLog.lines.find((l) => l.msg === 'subscribe refused')!;
    expect(refused).toMatchObject({ actorId: actor.actorId, scopeId: scope.accessScopeId, filter: '#', reason: 'wildcard_app' });
    expect(refused.clientId).toEqual(expect.any(String));

    const brokerMetrics = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text();
    for (const line of [
      /scopegate_broker_decisions_total\{action="connect",outcome="allowed",reason="ok"\} [1-9]/,
      /scopegate_broker_decisions_total\{action="connect",outcome="denied",reason="bad_credentials"\} 1/,
      /scopegate_broker_decisions_total\{action="subscribe",outcome="denied",reason="wildcard_app"\} 1/,
      /scopegate_broker_decisions_total\{action="publish",outcome="allowed",reason="ok"\} 1/,
      /scopegate_broker_decision_cache_total\{result="miss"\} 1/,
      /scopegate_broker_messages_total\{direction="in"\} 1/,
      /scopegate_broker_messages_total\{direction="out"\} 1/,
      /scopegate_broker_sidecar_call_seconds_bucket\{le="[\d.]+",call="connect",outcome="ok"\} \d/,
      /scopegate_broker_change_feed_up 1/,
      /scopegate_broker_change_feed_lag_seconds \d/,
    ]) {
      expect(brokerMetrics).toMatch(line);
    }
    const sidecarMetrics = await (await fetch(`${url}/metrics`)).text();
    expect(sidecarMetrics).toMatch(/scopegate_http_requests_total\{method="POST",status="201"\} \d/);
    expect(sidecarMetrics).toMatch(/scopegate_store_errors_total 0/);
  });

  it('counts connected clients per tenant', async () => {
    const { api, orgId } = await createProject(sg, 'obs-gauge');
    const scope = await api.scopes.create({ slug: 'acme', name: 'Acme' });
    const app = await api.apps.create({ slug: 'my-app', name: 'My App', mode: 'open' });
    const actor = await createActor(api, 'device', scope.accessScopeId, [app.appId]);
    const mqttUrl = `mqtt://127.0.0.1:${broker.tcpPort}`;
    const clients = [await connect(mqttUrl, actor.actorId, actor.token), await connect(mqttUrl, actor.actorId, actor.token)];
    const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text();
    expect(text).toContain(`scopegate_broker_connected_clients{tenant="${orgId}"} 2`);
    await Promise.all(clients.map((c) => c.end()));
  });
});
