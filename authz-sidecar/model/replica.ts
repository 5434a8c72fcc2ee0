import { EventEmitter } from 'node:events';
import type { ChangeEvent, PolicyStore } from '../store/policy-store.ts';
import { PolicyModel } from './policy-model.ts';
import type { StoredRecord } from './records.ts';

/**
 * Keeps a PolicyModel current with the store: a snapshot at start, then every change event (from this
 * sidecar's own commits and from other sidecars sharing the store), applied strictly in seq order. A
 * missing seq is fetched with `changesSince`; a gap the store can no longer fill reloads a snapshot.
 *
 * Emits 'change' after each applied event, for the broker change feed and live metrics, with the records the
 * event replaced or deleted as they were before it.
 */
export class PolicyReplica extends EventEmitter<{ change: [ChangeEvent, ReadonlyMap<string, StoredRecord>]; reloaded: [number] }> {
  readonly model = new PolicyModel();
  private unwatch: (() => void) | undefined;
  private catchingUp: Promise<void> | undefined;
  private readonly waiters = new Set<{ seq: number; resolve: () => void }>();

  constructor(private readonly store: PolicyStore) {
    super();
  }

  async start(): Promise<void> {
    // Watch first, so nothing committed between the snapshot and the watch is missed.
    this.unwatch = this.store.watch((event) => this.onEvent(event));
    this.model.load(await this.store.snapshot());
    this.emit('reloaded', this.model.seq);
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  get seq(): number {
    return this.model.seq;
  }

  /** Fetches and applies everything committed after the model's seq. Single-flight. */
  catchUp(): Promise<void> {
    this.catchingUp ??= this.doCatchUp().finally(() => {
      this.catchingUp = undefined;
    });
    return this.catchingUp;
  }

  /** Resolves once the model is at `seq` or newer; false when `timeoutMs` passes first. */
  async waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.model.seq >= seq) return true;
    void this.catchUp().catch(() => undefined);
    return new Promise<boolean>((resolve) => {
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(true);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        resolve(this.model.seq >= seq);
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private onEvent(event: ChangeEvent): void {
    if (event.seq <= this.model.seq) return;
    if (event.seq === this.model.seq + 1) this.applyOne(event);
    else void this.catchUp().catch(() => undefined);
  }

  private async doCatchUp(): Promise<void> {
    const events = await this.store.changesSince(this.model.seq);
    if (events === 'gap') {
      this.model.load(await this.store.snapshot());
      this.emit('reloaded', this.model.seq);
      this.wake();
      return;
    }
    for (const e of events) if (e.seq === this.model.seq + 1) this.applyOne(e);
  }

  private applyOne(event: ChangeEvent): void {
    const displaced = new Map<string, StoredRecord>();
    this.model.apply(event, displaced);
    this.emit('change', event, displaced);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters) if (this.model.seq >= w.seq) w.resolve();
  }
}
