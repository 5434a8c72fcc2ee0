import { randomFillSync } from 'node:crypto';
import { ScopeGateError, invalidReference } from '../../shared/errors.ts';
import type { PolicyModel } from '../model/policy-model.ts';
import { ID_PREFIX, partitionOf, type RecordKind, type RecordOf, type StoredRecord } from '../model/records.ts';
import type { RecordRef } from '../store/policy-store.ts';

/**
 * One write being prepared against the in-memory model. Every record it reads registers its partition in
 * `expect`, so the store refuses the commit if any of them changed meanwhile; pending puts and deletes are
 * visible to later reads of the same transaction (a batch sees its own earlier items).
 */
export class Tx {
  readonly expect = new Set<string>();
  readonly puts = new Map<string, StoredRecord>();
  readonly deletes = new Map<string, RecordRef>();
  readonly before: StoredRecord[] = [];
  /** Partitions this write moves without writing a record of theirs (see `touch`). */
  readonly bumps = new Set<string>();
  /** Things done that change no record but belong in the audit log (e.g. a token issued). */
  readonly notes: Array<{ kind: string; tenantId: string | null; [field: string]: unknown }> = [];

  constructor(
    readonly model: PolicyModel,
    readonly now: string,
  ) {}

  /** Depend on a whole partition (e.g. a tenant's counts, or 'global' for scope types). */
  depend(partition: string): void {
    this.expect.add(partition);
  }

  /**
   * Depend on a whole partition and move it with this write, without rewriting any of its records: a racing
   * write that read the partition then conflicts and is redone (uniqueness across tenants, a tenant's limits).
   */
  touch(partition: string): void {
    this.expect.add(partition);
    this.bumps.add(partition);
  }

  get<K extends RecordKind>(kind: K, id: string): RecordOf<K> | undefined {
    if (this.deletes.has(id)) return undefined;
    const pending = this.puts.get(id);
    if (pending) return pending.kind === kind ? (pending as RecordOf<K>) : undefined;
    const r = this.model.get(kind, id);
    if (r) this.expect.add(partitionOf(r));
    return r;
  }

  /** A referenced record that must exist: 422 INVALID_REFERENCE otherwise. */
  ref<K extends RecordKind>(kind: K, id: string, field: string): RecordOf<K> {
    const r = this.get(kind, id);
    if (!r) throw invalidReference(field, kind, id);
    return r;
  }

  /** A record addressed by the URL: 404 otherwise. */
  must<K extends RecordKind>(kind: K, id: string): RecordOf<K> {
    const r = this.get(kind, id);
    if (!r) throw new ScopeGateError('NOT_FOUND', `${kind} '${id.slice(0, 80)}' does not exist.`);
    return r;
  }

  put<R extends StoredRecord>(record: R): R {
    const existing = this.model.getAny(record.id);
    if (existing && !this.puts.has(record.id) && !this.deletes.has(record.id)) this.before.push(existing);
    this.deletes.delete(record.id);
    this.puts.set(record.id, record);
    this.expect.add(partitionOf(record));
    return record;
  }

  delete(record: StoredRecord): void {
    if (!this.puts.has(record.id) || this.model.getAny(record.id)) this.before.push(record);
    this.puts.delete(record.id);
    if (this.model.getAny(record.id)) {
      this.deletes.set(record.id, { kind: record.kind, id: record.id, tenantId: record.tenantId });
    }
    this.expect.add(partitionOf(record));
  }

  /**
   * Records an action that changes no stored record (issuing a token) so that it is committed as an
   * audit-only change: it advances the log and appears in the audit log like any write.
   */
  note(entry: { kind: string; tenantId: string | null; [field: string]: unknown }): void {
    this.notes.push(entry);
  }

  /** Base fields of a new record. */
  base(kind: RecordKind): { id: string; createdAt: string; updatedAt: string } {
    return { id: newId(kind), createdAt: this.now, updatedAt: this.now };
  }

  get empty(): boolean {
    return this.puts.size === 0 && this.deletes.size === 0 && this.notes.length === 0;
  }

  tenantIds(): string[] {
    const set = new Set<string>();
    for (const r of this.puts.values()) if (r.tenantId) set.add(r.tenantId);
    for (const r of this.deletes.values()) if (r.tenantId) set.add(r.tenantId);
    for (const n of this.notes) if (n.tenantId) set.add(n.tenantId);
    return [...set];
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time (256 ids) rather than 16 bytes per id: each draw
 * is a `getrandom` syscall, and the profile of a write-heavy run showed them costing more than the rest of
 * making the id (node's randomUUID keeps a cache the same way). Every byte is used once.
 */
const idBytes = Buffer.alloc(4_096);
let idOffset = idBytes.length;

/** `<prefix>_<16 random base36 chars>`: ~82 bits, never chosen by a client. */
export function newId(kind: RecordKind): string {
  if (idOffset + 16 > idBytes.length) {
    randomFillSync(idBytes);
    idOffset = 0;
  }
  let s = '';
  for (let i = idOffset; i < idOffset + 16; i++) s += ALPHABET[idBytes[i]! % 36];
  idOffset += 16;
  return `${ID_PREFIX[kind]}_${s}`;
}
