import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { LimitCounters } from './limits/limit-counters.ts';

/**
 * Counts on the per-message path are plain number increments (a prom-client `inc()` validates, hashes
 * labels and allocates; at 100k messages/s that shows in a profile). They are copied into the Prometheus
 * counters when /metrics is scraped.
 */
export interface HotCounters {
  messagesIn: number;
  messagesOut: number;
  cacheHit: number;
  cacheMiss: number;
}

/** Prometheus metrics of one broker (its own registry, so tests can run several brokers in one process). */
export function createBrokerMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'scopegate_broker_' });
  const hot: HotCounters = { messagesIn: 0, messagesOut: 0, cacheHit: 0, cacheMiss: 0 };
  let publishesReported = 0;
  const decisions = new Counter({
    name: 'scopegate_broker_decisions_total',
    help: 'MQTT authorization decisions by action (connect, publish, subscribe), outcome and reason',
    labelNames: ['action', 'outcome', 'reason'],
    registers: [registry],
    collect() {
      // Allowed publishes are counted as plain numbers on the hot path; bring them in at scrape time.
      this.labels('publish', 'allowed', 'ok').inc(hot.messagesIn - publishesReported);
      publishesReported = hot.messagesIn;
    },
  });
  new Counter({
    name: 'scopegate_broker_decision_cache_total',
    help: 'Publish decision cache lookups by result (hit, miss)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      this.labels('hit').inc(hot.cacheHit);
      this.labels('miss').inc(hot.cacheMiss);
    },
  });
  new Counter({
    name: 'scopegate_broker_messages_total',
    help: 'Messages in (publishes allowed) and out (deliveries to clients)',
    labelNames: ['direction'],
    registers: [registry],
    collect() {
      this.reset();
      this.labels('in').inc(hot.messagesIn);
      this.labels('out').inc(hot.messagesOut);
    },
  });
  let limitSource: LimitCounters | null = null;
  const limitEvents = new Counter({
    name: 'scopegate_broker_limit_events_total',
    help: 'Publishes throttled (paused), dropped and refused by a limit or permission field, per tenant and limit (labels bounded: see limits/limit-counters.ts)',
    labelNames: ['tenant', 'event', 'limit'],
    registers: [registry],
    collect() {
      if (!limitSource) return;
      this.reset();
      for (const [tenant, event, limit, n] of limitSource.entries()) this.labels(tenant, event, limit).inc(n);
    },
  });
  return {
    registry,
    decisions,
    hot,
    limitEvents,
    /** The broker's limit counters, copied into limitEvents at scrape time. */
    trackLimitEvents(counters: LimitCounters) {
      limitSource = counters;
    },
    sidecarSeconds: new Histogram({
      name: 'scopegate_broker_sidecar_call_seconds',
      help: 'Latency of calls to the authz sidecar by call (connect, sessions)',
      labelNames: ['call', 'outcome'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    connectedClients: new Gauge({ name: 'scopegate_broker_connected_clients', help: 'Connected, authorized sessions per tenant', labelNames: ['tenant'], registers: [registry] }),
    feedLagSeconds: new Gauge({ name: 'scopegate_broker_change_feed_lag_seconds', help: 'Seconds since the last event or heartbeat on the change feed', registers: [registry] }),
    feedUp: new Gauge({ name: 'scopegate_broker_change_feed_up', help: '1 while the change feed from the sidecar is connected', registers: [registry] }),
    sessionsClosed: new Counter({ name: 'scopegate_broker_sessions_closed_total', help: 'Sessions closed by the broker, by reason', labelNames: ['reason'], registers: [registry] }),
    grantsRefreshed: new Counter({ name: 'scopegate_broker_grants_refreshed_total', help: 'Session grants re-fetched from the sidecar after policy changes (one per actor per refresh)', registers: [registry] }),
    connectRechecks: new Counter({ name: 'scopegate_broker_connect_rechecks_total', help: 'Sessions re-decided right after CONNECT because a change heard meanwhile concerned their grant', registers: [registry] }),
    qos0Dropped: new Counter({ name: 'scopegate_broker_qos0_dropped_total', help: 'QoS 0 messages dropped because Redis could not route them (outage)', registers: [registry] }),
    removedState: new Counter({
      name: 'scopegate_broker_removed_state_total',
      help: 'Stored state removed or moved after a scope was deleted, created or moved, or an actor deleted: retained messages removed/moved, stored sessions removed',
      labelNames: ['what'],
      registers: [registry],
    }),
    redisUp: new Gauge({ name: 'scopegate_broker_redis_up', help: '1 while every Redis connection of this broker is usable (Redis mode)', registers: [registry] }),
    slowConsumerDrops: new Counter({ name: 'scopegate_broker_slow_consumer_drops_total', help: 'QoS 0 deliveries dropped because the receiving connection’s outgoing buffer was full', registers: [registry] }),
    subscriptionsDropped: new Counter({ name: 'scopegate_broker_subscriptions_dropped_total', help: 'Subscriptions dropped after a policy change', registers: [registry] }),
  };
}

export type BrokerMetrics = ReturnType<typeof createBrokerMetrics>;
