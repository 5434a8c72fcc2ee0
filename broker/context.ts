import type { Logger } from 'pino';
import type { RedisHealth } from '../shared/redis-connection.ts';
import type { Claims } from './claims.ts';
import type { BrokerConfig } from './config.ts';
import type { LiveUpdates } from './live-updates.ts';
import type { BrokerMetrics } from './metrics.ts';
import type { LimitRuntime } from './limits/session-limits.ts';
import type { SessionControl } from './session-control.ts';
import type { SessionRegistry } from './session-registry.ts';
import type { SharedGroups } from './shared-subscriptions.ts';
import type { SidecarClient } from './sidecar-client.ts';
import type { TopicSpacePurge } from './topic-space-purge.ts';
import type { LedgerReporter } from './ledger-reporter.ts';

/** What every hook needs, built once per broker by server.ts. */
export interface BrokerContext {
  config: Readonly<BrokerConfig>;
  sidecar: SidecarClient;
  registry: SessionRegistry;
  sessions: SessionControl;
  live: LiveUpdates;
  metrics: BrokerMetrics;
  logger: Logger;
  /** Shared subscription groups of this broker; set once Aedes exists (server.ts). */
  shared: SharedGroups | null;
  /** Cluster-wide claims: which broker delivers a shared-subscription message or publishes a dead broker's will. */
  claims: Claims;
  /** Removes what deleted scopes and actors left in the persistence; set once Aedes exists. */
  purge: TopicSpacePurge | null;
  /** Limits of the scope tree and the install's defaults (SPEC §7). */
  limits: LimitRuntime;
  /** Reports sessions to the sidecar's live session ledger. */
  ledger: LedgerReporter;
  /** Redis mode: whether Redis is usable (CONNECTs get CONNACK 3 while it is not); null in memory mode. */
  redisHealth: RedisHealth | null;
}
