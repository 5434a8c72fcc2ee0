import type { Logger } from 'pino';
import type { BrokerConfig } from './config.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { SessionControl } from './session-control.ts';
import type { SessionRegistry } from './session-registry.ts';
import type { SidecarClient } from './sidecar-client.ts';

/** What every hook needs, built once per broker by server.ts. */
export interface BrokerContext {
  config: Readonly<BrokerConfig>;
  sidecar: SidecarClient;
  registry: SessionRegistry;
  sessions: SessionControl;
  metrics: BrokerMetrics;
  logger: Logger;
}
