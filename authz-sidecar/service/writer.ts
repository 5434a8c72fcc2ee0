import { ScopeGateError, isScopeGateError } from '../../shared/errors.ts';
import type { PolicyReplica } from '../model/replica.ts';
import type { StoredRecord } from '../model/records.ts';
import type { PolicyStore } from '../store/policy-store.ts';
import { Tx } from './tx.ts';

export interface WriteContext {
  principal: string;
  requestId?: string;
  /** Runs on the built transaction before it is committed; throws to refuse it (e.g. 403 for an API key). */
  guard?: (tx: Tx) => void;
}

export interface WriteResult<T> {
  value: T;
  /** The store seq of the commit (the tenant's new revision); the current seq when nothing changed. */
  revision: number;
}

const MAX_ATTEMPTS = 12;

/**
 * Runs writes: build a Tx against the replica's model, commit it with optimistic concurrency, and on a
 * conflict catch up with the store and build it again. Writes of this process are queued one at a time so
 * they never conflict with each other; conflicts only come from other sidecars. After a commit the replica
 * is brought up to the commit's seq, so the caller reads its own write on this sidecar at once.
 */
export class Writer {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: PolicyStore,
    private readonly replica: PolicyReplica,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  write<T>(ctx: WriteContext, action: string, build: (tx: Tx) => T): Promise<WriteResult<T>> {
    const run = this.queue.then(() => this.attempt(ctx, action, build));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Builds the write against the current model and checks it (the guard included) without committing:
   * what it would do, e.g. every record a cascade delete would remove. Nothing is stored or audited.
   */
  preview<T>(ctx: WriteContext, build: (tx: Tx) => T): T {
    const tx = new Tx(this.replica.model, this.clock().toISOString());
    const value = build(tx);
    ctx.guard?.(tx);
    return value;
  }

  private async attempt<T>(ctx: WriteContext, action: string, build: (tx: Tx) => T): Promise<WriteResult<T>> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const tx = new Tx(this.replica.model, this.clock().toISOString());
      let value: T;
      try {
        value = build(tx);
      } catch (e) {
        // A refused build must not tell an API key more than a refused guard would: what it read of another
        // tenant before failing (e.g. 409 "already linked" for two records of that tenant) is answered 403.
        ctx.guard?.(tx);
        throw e;
      }
      ctx.guard?.(tx);
      if (tx.empty) return { value, revision: this.replica.seq };
      const expect: Record<string, number> = {};
      for (const p of tx.expect) expect[p] = this.replica.model.partitionSeq(p);
      let result;
      try {
        result = await this.store.commit({
          expect,
          puts: [...tx.puts.values()],
          deletes: [...tx.deletes.values()],
          bump: [...tx.bumps],
          audit: {
            principal: ctx.principal,
            action,
            at: tx.now,
            ...(ctx.requestId ? { requestId: ctx.requestId } : {}),
            tenantIds: tx.tenantIds(),
            before: tx.before.map(redact),
            after: [...[...tx.puts.values()].map(redact), ...tx.notes],
          },
        });
      } catch (e) {
        throw isScopeGateError(e) ? e : new ScopeGateError('STORE_UNAVAILABLE', undefined, []);
      }
      if (result.ok) {
        await this.replica.waitFor(result.seq, 5_000);
        return { value, revision: result.seq };
      }
      await this.replica.catchUp();
    }
    throw new ScopeGateError('WRITE_CONFLICT');
  }
}

const SECRET_FIELDS = new Set(['hash', 'privateJwk']);

/** Audit entries never carry secrets, not even hashed. */
export function redact(record: StoredRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(record)) out[k] = SECRET_FIELDS.has(k) ? '[redacted]' : v;
  return out;
}
