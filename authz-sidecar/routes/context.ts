import type { Logger } from 'pino';
import type { PolicyReplica } from '../model/replica.ts';
import type { PolicyStore } from '../store/policy-store.ts';
import type { Writer } from '../service/writer.ts';
import type { RouteRegistry } from './registry.ts';

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
}
