import type { Logger } from 'pino';
import type { PolicyReplica } from '../model/replica.ts';
import type { PolicyStore } from '../store/policy-store.ts';
import type { Writer } from '../service/writer.ts';
import type { RouteRegistry } from './registry.ts';
import type { SessionLedger } from '../ledger/session-ledger.ts';
import type { SessionLimits } from '../ledger/session-entry.ts';
import type { AdminRateLimiter } from '../http/rate-limit.ts';

/** What route handlers are given: injected, never imported, so tests build apps with their own parts. */
export interface SidecarContext {
  store: PolicyStore;
  replica: PolicyReplica;
  writer: Writer;
  logger: Logger;
  adminToken: string;
  brokerToken: string;
  clock: () => Date;
  routes: RouteRegistry;
  /** Live sessions reported by the brokers (shared by every sidecar in Redis mode). */
  ledger: SessionLedger;
  /** Session-count limits checked atomically when a CONNECT reserves its slot (none by default). */
  sessionLimits: SessionLimits;
  /** Admin-API rate limits per API key and per tenant (429 RATE_LIMITED). */
  rateLimiter: AdminRateLimiter;
}
