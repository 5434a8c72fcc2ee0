import type { Client } from 'aedes';
import type { SessionState } from './session-state.ts';

/** The ScopeGate state of an Aedes client lives on the client object itself: one property read per packet. */
const STATE = Symbol('scopegate.session');
type WithState = Client & { [STATE]?: SessionState };

const NO_CLIENTS: ReadonlySet<Client> = new Set();

/** Adds the (empty) state slot when the client first appears, so every client object has one shape. */
export function initStateSlot(client: Client): void {
  (client as WithState)[STATE] = undefined;
}

export function stateOf(client: Client | null | undefined): SessionState | undefined {
  return client ? (client as WithState)[STATE] : undefined;
}

/**
 * Which sessions are connected: by actor, by tenant (metrics), and by the grant inputs their grants were
 * computed from (`dependsOn`), so that a change-feed event naming inputs finds exactly the sessions to
 * re-decide without scanning every client.
 */
export class SessionRegistry {
  private readonly byActor = new Map<string, Set<Client>>();
  private readonly byTenant = new Map<string, Set<string>>();
  /**
   * Per grant input, the actors whose sessions depend on it, each with how many of its sessions do. By actor,
   * not by client: a change is re-decided per actor, and a grant depends on a dozen inputs or more, so an entry
   * per session and input was ~200 B of every held session where an actor holds many.
   */
  private readonly byInput = new Map<string, Map<string, number>>();

  /** Attaches (or replaces) the state of a client and indexes it. */
  set(client: Client, state: SessionState): void {
    const previous = stateOf(client);
    (client as WithState)[STATE] = state;
    // A refreshed grant usually reads the same inputs as before (a permission linked to a role it holds):
    // then the client is already indexed under each. Re-indexing meant a delete and an add in sets that
    // hold every session of a tenant, and was a third of the broker's cost of refreshing a session.
    if (previous && previous.grant.actorId === state.grant.actorId && previous.grant.tenantId === state.grant.tenantId && sameInputs(previous.grant.dependsOn, state.grant.dependsOn)) return;
    // Counted inputs are given back once, and only by a client that is indexed (not one deleted since).
    const indexed = previous !== undefined && this.isIndexed(client, previous);
    if (previous && previous.grant.tenantId !== state.grant.tenantId) this.unindex(client, previous);
    if (indexed) this.unindexInputs(previous);
    const { actorId, tenantId } = state.grant;
    for (const input of state.grant.dependsOn) {
      let actors = this.byInput.get(input);
      if (!actors) this.byInput.set(input, (actors = new Map()));
      actors.set(actorId, (actors.get(actorId) ?? 0) + 1);
    }
    let clients = this.byActor.get(actorId);
    if (!clients) this.byActor.set(actorId, (clients = new Set()));
    clients.add(client);
    let actors = this.byTenant.get(tenantId);
    if (!actors) this.byTenant.set(tenantId, (actors = new Set()));
    actors.add(actorId);
  }

  /** Forgets a client (on disconnect). Its state stays readable on the object for in-flight packets. */
  delete(client: Client): void {
    const state = stateOf(client);
    if (!state) return;
    // Idempotent: the broker hears of most ends more than once.
    const indexed = this.isIndexed(client, state);
    this.unindex(client, state);
    if (indexed) this.unindexInputs(state);
  }

  /** Actors with a connected session whose grant depends on any of `inputs`. */
  actorsDependingOn(inputs: readonly string[]): string[] {
    const out = new Set<string>();
    for (const input of inputs) for (const actorId of this.byInput.get(input)?.keys() ?? []) out.add(actorId);
    return [...out];
  }

  /** The actor's connected clients, copied (safe to close them while iterating). */
  clientsOf(actorId: string): Client[] {
    return [...(this.byActor.get(actorId) ?? [])];
  }

  /** Whether the actor has a connected session (no copy: asked for every actor a change names). */
  hasClients(actorId: string): boolean {
    return (this.byActor.get(actorId)?.size ?? 0) > 0;
  }

  /** The actor's connected clients, live: for reading only, not while sessions may be closed or re-indexed. */
  liveClientsOf(actorId: string): ReadonlySet<Client> {
    return this.byActor.get(actorId) ?? NO_CLIENTS;
  }

  allActors(): string[] {
    return [...this.byActor.keys()];
  }

  allClients(): Client[] {
    const out: Client[] = [];
    for (const set of this.byActor.values()) out.push(...set);
    return out;
  }

  /** Connected sessions per tenant (for the metrics gauge). */
  countsByTenant(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const [tenantId, actors] of this.byTenant) {
      let n = 0;
      for (const a of actors) n += this.byActor.get(a)?.size ?? 0;
      counts.set(tenantId, n);
    }
    return counts;
  }

  get size(): number {
    let n = 0;
    for (const set of this.byActor.values()) n += set.size;
    return n;
  }

  /** Whether the client is indexed under this state: in its actor's set exactly when its inputs are counted. */
  private isIndexed(client: Client, state: SessionState): boolean {
    return this.byActor.get(state.grant.actorId)?.has(client) ?? false;
  }

  private unindexInputs(state: SessionState): void {
    const { actorId } = state.grant;
    for (const input of state.grant.dependsOn) {
      const actors = this.byInput.get(input);
      const n = actors?.get(actorId);
      if (!actors || n === undefined) continue;
      if (n > 1) actors.set(actorId, n - 1);
      else {
        actors.delete(actorId);
        if (actors.size === 0) this.byInput.delete(input);
      }
    }
  }

  private unindex(client: Client, state: SessionState): void {
    const { actorId, tenantId } = state.grant;
    const clients = this.byActor.get(actorId);
    if (!clients) return;
    clients.delete(client);
    if (clients.size > 0) return;
    this.byActor.delete(actorId);
    const actors = this.byTenant.get(tenantId);
    actors?.delete(actorId);
    if (actors?.size === 0) this.byTenant.delete(tenantId);
  }
}

function sameInputs(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
