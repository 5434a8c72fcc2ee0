import { ScopeGateClient } from '../client/index.ts';
import { startBrokerProcess, startSidecarProcess } from '../scripts/processes.ts';
import { spawnJson, type JsonChild } from './lib.ts';

export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
export const BROKER_TOKEN = 'bench-broker-token-0123456789abcdef';

export interface SystemUnderTest {
  sidecarUrl: string;
  brokerPort: number;
  brokerPid: number;
  sidecarPid: number;
  sg: ScopeGateClient;
  brokerMetricsPort: number;
  /** The latest log lines of each process (JSON, as printed). */
  logs(): { broker: Array<Record<string, unknown>>; sidecar: Array<Record<string, unknown>> };
  /** Another broker process on the same sidecar (a fresh process, for figures a warm one would skew). */
  startBroker(nodeArgs?: string[]): Promise<{ port: number; pid: number; stop(): Promise<void> }>;
  stop(): Promise<void>;
}

/** ScopeGate as a user runs it: sidecar and broker as two processes, embedded stores. */
export async function startScopeGate(extraBrokerEnv: Record<string, string> = {}, brokerNodeArgs: string[] = [], sidecarNodeArgs: string[] = []): Promise<SystemUnderTest> {
  // Default log level (info), as shipped: every CONNECT decision is logged on both processes.
  const sidecar = await startSidecarProcess({ AUTHZ_ADMIN_TOKEN: ADMIN_TOKEN, BROKER_TOKEN }, sidecarNodeArgs);
  const brokerEnv = { SIDECAR_URL: sidecar.url, BROKER_TOKEN, ...extraBrokerEnv };
  const broker = await startBrokerProcess(brokerEnv, brokerNodeArgs);
  return {
    sidecarUrl: sidecar.url,
    brokerPort: broker.tcpPort,
    brokerPid: broker.child.pid!,
    sidecarPid: sidecar.child.pid!,
    sg: new ScopeGateClient({ baseUrl: sidecar.url, token: ADMIN_TOKEN }),
    brokerMetricsPort: broker.metricsPort,
    logs: () => ({ broker: broker.lines, sidecar: sidecar.lines }),
    async startBroker(nodeArgs: string[] = []) {
      const extra = await startBrokerProcess(brokerEnv, nodeArgs);
      return { port: extra.tcpPort, pid: extra.child.pid!, stop: () => extra.stop() };
    },
    async stop() {
      await broker.stop();
      await sidecar.stop();
    },
  };
}

/** The comparison point: plain Aedes, same options, no hooks. */
export async function startPlainAedes(nodeArgs: string[] = []): Promise<{ port: number; pid: number; proc: JsonChild; stop(): Promise<void> }> {
  const proc = spawnJson('bench/plain-aedes.ts', {}, [], nodeArgs);
  const line = await proc.next((l) => typeof l.tcpPort === 'number');
  return { port: line.tcpPort as number, pid: proc.child.pid!, proc, stop: () => proc.stop() };
}
