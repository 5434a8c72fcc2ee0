import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of one sidecar (its own registry, so tests can run several sidecars in one process). */
export function createSidecarMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'scopegate_sidecar_' });
  return {
    registry,
    httpRequests: new Counter({ name: 'scopegate_http_requests_total', help: 'HTTP requests by method and status', labelNames: ['method', 'status'], registers: [registry] }),
    decisions: new Counter({ name: 'scopegate_decisions_total', help: 'Authorization decisions by kind, outcome and reason', labelNames: ['kind', 'outcome', 'reason'], registers: [registry] }),
    decisionSeconds: new Histogram({ name: 'scopegate_decision_seconds', help: 'Time to decide one request', labelNames: ['kind'], buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01], registers: [registry] }),
    storeErrors: new Counter({ name: 'scopegate_store_errors_total', help: 'Requests answered 503 because the store was unreachable', registers: [registry] }),
    changesApplied: new Counter({ name: 'scopegate_changes_applied_total', help: 'Store change events applied to the in-memory model', registers: [registry] }),
  };
}

export type SidecarMetrics = ReturnType<typeof createSidecarMetrics>;
