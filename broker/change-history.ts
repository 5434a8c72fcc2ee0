import type { BrokerChangeEvent, SessionGrant } from '../shared/broker-wire.ts';

/**
 * The latest change-feed events, so that a session registered with a grant computed at revision r can be
 * checked against every change after r that arrived before it was registered. (Changes that arrive after it
 * was registered find it through the registry's input index.) Bounded: when the oldest events are dropped,
 * the history only answers for grants newer than them and says "may concern" for older ones.
 */
export class ChangeHistory {
  private readonly events: Array<{ seq: number; inputs: ReadonlySet<string> | null }> = [];
  /** Every event with a seq above this one is in `events` (until the feed first opens: nothing can be told). */
  private completeAfter = Number.POSITIVE_INFINITY;

  constructor(private readonly capacity = 4_096) {}

  /** The feed (re)opened at `revision`: what came before it is covered by the full re-decision it triggers. */
  reset(revision: number): void {
    this.events.length = 0;
    this.completeAfter = revision;
  }

  record(event: BrokerChangeEvent): void {
    if (event.all) this.events.push({ seq: event.seq, inputs: null });
    else if (event.inputs.length > 0) this.events.push({ seq: event.seq, inputs: new Set(event.inputs) });
    // Events that name nothing need no entry: they concern no grant.
    if (this.events.length > this.capacity) this.completeAfter = this.events.shift()!.seq;
  }

  /** Whether a change after the grant's revision that this broker has already heard may concern it. */
  concerns(grant: Pick<SessionGrant, 'revision' | 'dependsOn'>): boolean {
    if (grant.revision < this.completeAfter) return true;
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.seq <= grant.revision) break;
      if (e.inputs === null) return true;
      for (const input of grant.dependsOn) if (e.inputs.has(input)) return true;
    }
    return false;
  }
}
