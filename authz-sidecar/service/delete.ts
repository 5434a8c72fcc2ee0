import { ScopeGateError } from '../../shared/errors.ts';
import type { StoredRecord } from '../model/records.ts';
import { REFERENCES, identitiesOf, ownedScopeId } from '../model/references.ts';
import type { Tx } from './tx.ts';

/**
 * Deletes a record. Without cascade: 409 STILL_REFERENCED while anything refers to it (listing the first
 * referrers). With cascade: everything that refers to it, transitively, goes in the same commit; soft
 * references (a user's default tenant) are set to null instead. An entity's own scope goes with the entity,
 * and a scope owned by an entity can only be deleted through that entity.
 */
export function deleteRecord(tx: Tx, target: StoredRecord, cascade: boolean): StoredRecord[] {
  if (target.kind === 'scope' && target.ownerId !== null && !tx.deletes.has(target.ownerId)) {
    throw new ScopeGateError('RULE_VIOLATION', `Scope '${target.id}' belongs to '${target.ownerId}'; delete that instead.`, [
      { message: 'entity-owned scope', ownerId: target.ownerId },
    ]);
  }
  if (target.kind === 'scopeType' && target.builtIn) {
    throw new ScopeGateError('RULE_VIOLATION', 'Built-in scope types cannot be deleted.', []);
  }
  if (target.kind === 'scopeTypeEdge' && target.builtIn) {
    throw new ScopeGateError('RULE_VIOLATION', 'Built-in scope-type edges cannot be deleted.', []);
  }

  const doomed = new Map<string, StoredRecord>();
  const queue: StoredRecord[] = [target];
  const blockers: StoredRecord[] = [];
  while (queue.length > 0) {
    const r = queue.pop()!;
    if (doomed.has(r.id)) continue;
    doomed.set(r.id, r);
    tx.get(r.kind, r.id);
    const owned = ownedScopeId(r);
    if (owned) {
      const scope = tx.get('scope', owned);
      if (scope) queue.push(scope);
    }
    // A scope reached by a cascade takes its owning entity (the workspace of a workspace scope) with it.
    if (r.kind === 'scope' && r.ownerId !== null) {
      const owner = tx.model.getAny(r.ownerId);
      if (owner) queue.push(owner);
    }
    for (const identity of identitiesOf(r)) {
      for (const referrer of tx.model.referrersOf(identity)) {
        if (doomed.has(referrer.id) || tx.deletes.has(referrer.id)) continue;
        const fields = referrer as unknown as Record<string, unknown>;
        const pointing = REFERENCES[referrer.kind].filter((f) => fields[f.field] === identity);
        // Soft only when every reference to the target is soft (a tenant's user refers to it hard, by tenantId).
        const soft = pointing.every((f) => f.soft) ? pointing[0] : undefined;
        if (soft) {
          if (cascade) tx.put({ ...referrer, [soft.field]: null, updatedAt: tx.now } as StoredRecord);
          continue;
        }
        // Owned-by relations: an entity's scope refers back to it through ownerId, not a reference field.
        if (cascade) queue.push(referrer);
        else blockers.push(referrer);
      }
    }
    if (!cascade && blockers.length > 0) break;
  }
  if (!cascade && blockers.length > 0) {
    throw new ScopeGateError(
      'STILL_REFERENCED',
      `'${target.id}' is still referenced by ${blockers.length > 1 ? `${blockers.length}+ records` : `'${blockers[0]!.id}'`}; delete them first or pass ?cascade=true.`,
      blockers.slice(0, 20).map((b) => ({ message: 'referenced by', kind: b.kind, id: b.id })),
    );
  }
  for (const r of doomed.values()) tx.delete(r);
  return [...doomed.values()];
}
