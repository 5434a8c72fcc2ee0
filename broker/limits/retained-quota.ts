/**
 * Retained messages and bytes per subtree, counted as retained PUBLISHes are admitted. Each stored retained
 * topic remembers the subtrees it was counted against, so replacing or clearing it (an empty retained payload)
 * gives back exactly what it took, whoever clears it.
 *
 * Two implementations: this one counts in the broker's memory (in-memory mode, where the retained messages
 * live in the same process); in Redis mode the counts live in Redis next to the retained messages
 * (redis-retained-quota.ts), shared by every broker and kept across restarts.
 */
export interface RetainedQuotaStore {
  admit(topic: string, bytes: number, bounds: readonly RetainBound[]): boolean | Promise<boolean>;
  /** A retained message removed outside the publish path (a deleted scope's): gives back what it took. */
  removed(topic: string): void | Promise<void>;
  /** A retained message moved to another topic outside the publish path (a moved scope's): it stays counted. */
  moved(from: string, to: string): void | Promise<void>;
}

export interface RetainBound {
  /** `tenant:<id>` for the install's per-tenant default, else the scope id that sets `limits.retained`. */
  key: string;
  maxMessages: number | null;
  maxBytes: number | null;
}

interface Stored {
  bytes: number;
  keys: readonly string[];
}

/** Counted in this process's memory (in-memory mode). */
export class RetainedQuota implements RetainedQuotaStore {
  private readonly byTopic = new Map<string, Stored>();
  private readonly usage = new Map<string, { messages: number; bytes: number }>();

  admit(topic: string, bytes: number, bounds: readonly RetainBound[]): boolean {
    const previous = this.byTopic.get(topic);
    if (bytes === 0) {
      if (previous) this.release(topic, previous);
      return true;
    }
    for (const b of bounds) {
      const u = this.usage.get(b.key);
      const counted = previous?.keys.includes(b.key) ? previous : undefined;
      const messages = (u?.messages ?? 0) + (counted ? 0 : 1);
      const total = (u?.bytes ?? 0) - (counted?.bytes ?? 0) + bytes;
      if (b.maxMessages !== null && messages > b.maxMessages) return false;
      if (b.maxBytes !== null && total > b.maxBytes) return false;
    }
    if (previous) this.release(topic, previous);
    const keys = bounds.map((b) => b.key);
    for (const key of keys) {
      const u = this.usage.get(key) ?? { messages: 0, bytes: 0 };
      u.messages += 1;
      u.bytes += bytes;
      this.usage.set(key, u);
    }
    this.byTopic.set(topic, { bytes, keys });
    return true;
  }

  removed(topic: string): void {
    const previous = this.byTopic.get(topic);
    if (previous) this.release(topic, previous);
  }

  moved(from: string, to: string): void {
    const previous = this.byTopic.get(from);
    if (!previous) return;
    this.byTopic.delete(from);
    const displaced = this.byTopic.get(to);
    if (displaced) this.release(to, displaced);
    this.byTopic.set(to, previous);
  }

  usageOf(key: string): { messages: number; bytes: number } {
    return { ...(this.usage.get(key) ?? { messages: 0, bytes: 0 }) };
  }

  private release(topic: string, stored: Stored): void {
    this.byTopic.delete(topic);
    for (const key of stored.keys) {
      const u = this.usage.get(key);
      if (!u) continue;
      u.messages -= 1;
      u.bytes -= stored.bytes;
      if (u.messages <= 0) this.usage.delete(key);
    }
  }
}
