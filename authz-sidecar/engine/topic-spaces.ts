import { INTERNAL_PREFIX } from '../../shared/topic.ts';
import type { TopicSpaceChange } from '../../shared/broker-wire.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import type { ScopeRecord, StoredRecord } from '../model/records.ts';
import type { ChangeEvent } from '../store/policy-store.ts';

/**
 * The topic spaces a change empties or moves, and the actors it deletes, for the broker (issue 11 item 10).
 *
 * Inside the broker, an access scope's messages live under `<mount>/<app>/<namespace>/…`, where the namespace
 * is the scope's slug path below its project. What is stored there (retained messages) belongs to the
 * customer of that scope, so:
 * - a scope deleted: its namespace is emptied (its subtree's namespaces are below it); a project deleted: its
 *   whole mount (namespace '');
 * - a scope renamed or moved: what is stored moves with it to the new namespace;
 * - a scope created: its namespace is emptied first, so a new scope never inherits what an old scope of the
 *   same slug left (even if the broker missed that scope's deletion while its change feed was down).
 * The actors a change deletes are named too: the broker removes their stored sessions (subscriptions, queues).
 */
export function topicSpacesOfChange(model: PolicyModel, event: Pick<ChangeEvent, 'puts' | 'deletes'>, before: ReadonlyMap<string, StoredRecord>): { spaces: TopicSpaceChange[]; deletedActors: string[] } {
  // The tree as it was (for deleted and replaced scopes) and as it is now.
  const old = (id: string) => before.get(id) ?? model.getAny(id);
  const now = (id: string) => model.getAny(id);
  const spaces: TopicSpaceChange[] = [];
  const deletedActors: string[] = [];
  const seen = new Set<string>();
  const add = (s: TopicSpaceChange) => {
    const key = `${s.mount} ${s.namespace}`;
    if (seen.has(key)) return;
    seen.add(key);
    spaces.push(s);
  };

  for (const ref of event.deletes) {
    const r = before.get(ref.id);
    if (r?.kind === 'actor') deletedActors.push(r.id);
    if (r?.kind === 'project') add({ mount: `${INTERNAL_PREFIX}${r.id}`, namespace: '', movedTo: null });
    if (r?.kind !== 'scope') continue;
    const space = spaceOf(r, old);
    if (space) add({ ...space, movedTo: null });
  }
  for (const r of event.puts) {
    if (r.kind !== 'scope') continue;
    const prev = before.get(r.id);
    const after = spaceOf(r, now);
    if (prev?.kind !== 'scope') {
      if (after) add({ ...after, movedTo: null });
      continue;
    }
    if (prev.slug === r.slug && prev.parentId === r.parentId) continue;
    const was = spaceOf(prev, old);
    if (!was) continue;
    // Moved into another project (or out of every project): nothing of it can follow; it is emptied.
    add({ ...was, movedTo: after && after.mount === was.mount ? after.namespace : null });
  }
  // A parent emptied or moved already covers its subtree.
  const covered = (s: TopicSpaceChange) =>
    spaces.some((o) => o !== s && o.mount === s.mount && o.movedTo === null && (o.namespace === '' || s.namespace.startsWith(`${o.namespace}/`)));
  return { spaces: spaces.filter((s) => !covered(s)), deletedActors };
}

/** The mount and namespace of an access scope (its slug path below its project); null for other scopes. */
function spaceOf(scope: ScopeRecord, lookup: (id: string) => StoredRecord | undefined): { mount: string; namespace: string } | null {
  const slugs: string[] = [];
  let current: StoredRecord | undefined = scope;
  for (let depth = 0; current?.kind === 'scope' && depth < 64; depth++) {
    const owner = current.ownerId ? lookup(current.ownerId) : undefined;
    if (owner?.kind === 'project' && owner.scopeId === current.id) {
      return slugs.length > 0 ? { mount: `${INTERNAL_PREFIX}${owner.id}`, namespace: slugs.reverse().join('/') } : null;
    }
    slugs.push(current.slug);
    current = current.parentId ? lookup(current.parentId) : undefined;
  }
  return null;
}
