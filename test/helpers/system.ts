import pino from 'pino';
import { loadBrokerConfig, type BrokerConfig } from '../../broker/config.ts';
import { startBroker, type BrokerOptions, type RunningBroker } from '../../broker/server.ts';
import { ScopeGateClient } from '../../client/index.ts';
import type { PolicyStore } from '../../authz-sidecar/store/policy-store.ts';
import type { SidecarOptions } from '../../authz-sidecar/sidecar.ts';
import { startSidecar, type TestSidecar } from './sidecar.ts';

export interface TestBroker {
  broker: RunningBroker;
  url: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** A real broker (TCP + WebSocket on ephemeral ports) talking to the sidecar at `sidecarUrl`. */
export async function startTestBroker(sidecarUrl: string, brokerToken: string, overrides: Partial<BrokerConfig> = {}, options: BrokerOptions = {}): Promise<TestBroker> {
  const config = { ...loadBrokerConfig({ MQTT_PORT: '0', MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', SIDECAR_URL: sidecarUrl, BROKER_TOKEN: brokerToken }), ...overrides };
  const broker = await startBroker(config, { metricsPort: 0, logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), feedSilenceMs: 3_000, ...options });
  await broker.live.ready;
  return { broker, url: `mqtt://127.0.0.1:${broker.tcpPort}`, wsUrl: `ws://127.0.0.1:${broker.wsPort}`, close: () => broker.close() };
}

export interface TestSystem {
  side: TestSidecar;
  sg: ScopeGateClient;
  broker: TestBroker;
  url: string;
  close(): Promise<void>;
}

/** Sidecar (in-memory store unless one is given) + broker, wired as `npm start` wires them. */
export async function startSystem(options: { store?: PolicyStore; broker?: Partial<BrokerConfig>; brokerOptions?: BrokerOptions; sidecar?: Partial<SidecarOptions> } = {}): Promise<TestSystem> {
  const side = await startSidecar(options.store, options.sidecar);
  const broker = await startTestBroker(side.url, side.brokerToken, options.broker, options.brokerOptions);
  return {
    side,
    sg: new ScopeGateClient({ baseUrl: side.url, token: side.adminToken }),
    broker,
    url: broker.url,
    async close() {
      await broker.close();
      await side.close();
    },
  };
}

export { createActor, createProject } from '../../scripts/world.ts';

/** RBAC for topics: one role at `scopeId` holding a permission per rule, assigned to the subject through a membership. */
export async function allowTopics(side: TestSidecar, subjectId: string, scopeId: string, rules: Array<['publish' | 'subscribe', string]>) {
  const role = await side.ok('POST', '/v1/roles', { scopeId, name: `topics ${Math.random().toString(16).slice(2, 8)}` });
  const permissionIds: string[] = [];
  for (const [action, pattern] of rules) {
    const perm = await side.ok('POST', '/v1/permissions', { scopeId, action, resourceType: 'topic', resourcePattern: pattern });
    await side.ok('POST', '/v1/role-permissions', { roleId: role.id, permissionId: perm.id });
    permissionIds.push(perm.id);
  }
  const membership = await side.ok('POST', '/v1/memberships', { subjectId, scopeId });
  const assignment = await side.ok('POST', '/v1/role-assignments', { roleId: role.id, membershipId: membership.id });
  return { roleId: role.id as string, permissionIds, membershipId: membership.id as string, assignmentId: assignment.id as string };
}
