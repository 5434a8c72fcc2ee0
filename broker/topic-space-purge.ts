import type { Aedes } from 'aedes';
import type { Logger } from 'pino';
import type { BrokerChangeEvent, TopicSpaceChange } from '../shared/broker-wire.ts';
import type { RedisConnection } from '../shared/redis-connection.ts';
import { toClient, toInternal } from '../shared/topic.ts';
import type { RetainedQuotaStore } from './limits/retained-quota.ts';
import type { BrokerMetrics } from './metrics.ts';
import { REDIS_CLIENTS_KEY, removeStoredSession, retainedMatching, storeRetainedDirect } from './aedes-internals.ts';

/**
 * Removes what a deleted scope or actor left in the broker's persistence, and moves what a renamed or moved
 * scope had stored (issue 11 item 10). The sidecar names it in the change feed (`spaces`, `deletedActors`;
 * authz-sidecar/engine/topic-spaces.ts); every broker applies it, after it re-decided the sessions the same
 * change concerned, so a message a session published just before it lost its grant is removed too. Applying
 * it twice (several brokers on one Redis) changes nothing more.
 *
 * - A topic space emptied: every retained message under `<mount>/<app>/<namespace>[/…]`, for every app
 *   (and what it counted against the retained quota is given back).
 * - A topic space moved: each such retained message is stored under the new namespace, then removed.
 * - A deleted actor: its stored sessions (client ids `<actorId>/…`) lose their subscriptions, queues and
 *   wills. In Redis mode they are found in aedes-persistence-redis' set of clients (whichever broker stored
 *   them); in memory mode this broker remembers the persistent sessions it stored.
 */
export class TopicSpacePurge {
  /** Memory mode: actor → client ids of the persistent sessions stored for it. */
  private readonly persistent = new Map<string, Set<string>>();

  constructor(
    private readonly aedes: Aedes,
    private readonly redis: RedisConnection | null,
    private readonly quota: RetainedQuotaStore,
    private readonly metrics: BrokerMetrics,
    private readonly logger: Logger,
  ) {}

  /** A persistent session was stored for `actorId` (memory mode keeps the index; Redis mode reads the set). */
  rememberPersistent(actorId: string, clientId: string): void {
    if (this.redis) return;
    let ids = this.persistent.get(actorId);
    if (!ids) this.persistent.set(actorId, (ids = new Set()));
    ids.add(clientId);
  }

  async apply(event: Pick<BrokerChangeEvent, 'spaces' | 'deletedActors'>): Promise<void> {
    for (const space of event.spaces ?? []) {
      const { removed, moved } = await this.applySpace(space);
      this.metrics.removedState.labels('retained_removed').inc(removed);
      this.metrics.removedState.labels('retained_moved').inc(moved);
      if (removed + moved > 0) this.logger.info({ mount: space.mount, namespace: space.namespace, movedTo: space.movedTo, removed, moved }, 'topic space: retained messages removed or moved');
    }
    for (const actorId of event.deletedActors ?? []) {
      const sessions = await this.storedSessionsOf(actorId);
      for (const clientId of sessions) await removeStoredSession(this.aedes, clientId);
      this.metrics.removedState.labels('stored_sessions').inc(sessions.length);
      this.persistent.delete(actorId);
      if (sessions.length > 0) this.logger.info({ actorId, sessions: sessions.length }, 'deleted actor: stored sessions removed');
    }
  }

  private async applySpace(space: TopicSpaceChange): Promise<{ removed: number; moved: number }> {
    const pattern = space.namespace === '' ? `${space.mount}/#` : `${space.mount}/+/${space.namespace}/#`;
    // Collected first: the stores below change what the lookup iterates over.
    const found = await collect(retainedMatching(this.aedes, pattern));
    let removed = 0;
    let moved = 0;
    for (const packet of found) {
      if (space.movedTo !== null) {
        // The message as the moved scope's own actors see it, put back under the new namespace.
        const inScope = toClient(space, packet.topic);
        const target = inScope === null ? null : toInternal({ mount: space.mount, namespace: space.movedTo }, inScope);
        if (target === null) continue;
        await storeRetainedDirect(this.aedes, { ...packet, topic: target });
        await this.quota.moved(packet.topic, target);
        moved++;
      } else {
        await this.quota.removed(packet.topic);
        removed++;
      }
      await storeRetainedDirect(this.aedes, { ...packet, payload: Buffer.alloc(0) });
    }
    return { removed, moved };
  }

  private async storedSessionsOf(actorId: string): Promise<string[]> {
    if (!this.redis) return [...(this.persistent.get(actorId) ?? [])];
    const out: string[] = [];
    const match = `${actorId.replace(/[*?[\]\\]/g, '\\$&')}/*`;
    let cursor = '0';
    do {
      const [next, ids] = (await this.redis.sscan(REDIS_CLIENTS_KEY, cursor, 'MATCH', match, 'COUNT', 1000)) as [string, string[]];
      out.push(...ids);
      cursor = next;
    } while (cursor !== '0');
    return out;
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
