import type { ScopeTypeEdgeRecord, ScopeTypeRecord } from '../model/records.ts';
import type { Tx } from './tx.ts';

/** The built-in scope types (SPEC §2) and the parent → child edges allowed between them. */
export const BUILTIN_TYPES: Array<Pick<ScopeTypeRecord, 'id' | 'name' | 'config'>> = [
  { id: 'type_tenant', name: 'Tenant', config: { permissionMode: 'define' } },
  { id: 'type_workspace', name: 'Workspace', config: { permissionMode: 'merge' } },
  { id: 'type_project', name: 'Project', config: { permissionMode: 'merge' } },
  { id: 'type_environment', name: 'Environment', config: { permissionMode: 'merge' } },
  { id: 'type_access', name: 'Access scope', config: { permissionMode: 'merge' } },
];

export const BUILTIN_EDGES: Array<[string, string]> = [
  ['type_tenant', 'type_workspace'],
  ['type_workspace', 'type_project'],
  ['type_project', 'type_environment'],
  ['type_project', 'type_access'],
  ['type_access', 'type_access'],
];

/** Types whose scopes are created only with their entity (POST /tenants, /workspaces, …), never via /scopes. */
export const ENTITY_TYPES = new Set(['type_tenant', 'type_workspace', 'type_project', 'type_environment']);

export const edgeId = (parent: string, child: string) => `sth_${parent.slice(5)}__${child.slice(5)}`;

/** Writes whichever built-ins are missing; an empty transaction when all are there (idempotent at start). */
export function ensureBuiltins(tx: Tx): void {
  tx.depend('global');
  for (const t of BUILTIN_TYPES) {
    if (tx.get('scopeType', t.id)) continue;
    const record: ScopeTypeRecord = {
      kind: 'scopeType',
      tenantId: null,
      builtIn: true,
      createdAt: tx.now,
      updatedAt: tx.now,
      ...t,
    };
    tx.put(record);
  }
  for (const [parentTypeId, childTypeId] of BUILTIN_EDGES) {
    const id = edgeId(parentTypeId, childTypeId);
    if (tx.get('scopeTypeEdge', id)) continue;
    const record: ScopeTypeEdgeRecord = {
      kind: 'scopeTypeEdge',
      id,
      tenantId: null,
      parentTypeId,
      childTypeId,
      builtIn: true,
      createdAt: tx.now,
      updatedAt: tx.now,
    };
    tx.put(record);
  }
}
