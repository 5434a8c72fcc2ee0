/**
 * The PolicyStore contract, run against every implementation (store.memory.test.ts, store.redis.test.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RoleRecord, ScopeTypeRecord, StoredRecord, TenantRecord, UserRecord } from '../authz-sidecar/model/records.ts';
import type { AuditDraft, ChangeEvent, Commit, PolicyStore, RecordRef } from '../authz-sidecar/store/policy-store.ts';

export interface MadeStore {
  store: PolicyStore;
  /**
   * Another PolicyStore sharing the same backend (memory: the same instance; Redis: a second client on the
   * same url and prefix). The contract closes it when it is a different object.
   */
  sibling?: () => PolicyStore | Promise<PolicyStore>;
  done(): Promise<void>;
}

const AT = '2025-01-01T00:00:00.000Z';

export function tenant(n: number, extra: Partial<TenantRecord> = {}): TenantRecord {
  return {
    kind: 'tenant',
    id: `tenant_t${n}`,
    tenantId: `tenant_t${n}`,
    scopeId: `scope_t${n}`,
    name: `Tenant ${n}`,
    slug: `tenant-${n}`,
    tenantKind: 'organization',
    planKey: null,
    billingEmail: null,
    maxUsers: 10,
    maxWorkspaces: null,
    externalId: null,
    createdAt: AT,
    updatedAt: AT,
    ...extra,
  };
}

export function role(tenantN: number, n: number, extra: Partial<RoleRecord> = {}): RoleRecord {
  return {
    kind: 'role',
    id: `role_t${tenantN}r${n}`,
    tenantId: `tenant_t${tenantN}`,
    scopeId: `scope_t${tenantN}`,
    name: `Role ${n}`,
    description: n % 2 === 0 ? null : 'with a "quoted" description, ünïcode and [] {} brackets',
    createdAt: AT,
    updatedAt: AT,
    ...extra,
  };
}

export function scopeType(name: string): ScopeTypeRecord {
  return {
    kind: 'scopeType',
    id: `type_${name}`,
    tenantId: null,
    name,
    config: { permissionMode: 'define' },
    builtIn: false,
    createdAt: AT,
    updatedAt: AT,
  };
}

const ref = (r: StoredRecord): RecordRef => ({ kind: r.kind, id: r.id, tenantId: r.tenantId });

function draft(action: string, tenantIds: string[], extra: Partial<AuditDraft> = {}): AuditDraft {
  return { principal: 'admin', action, at: AT, tenantIds, before: [], after: [], ...extra };
}

function commitOf(c: Partial<Commit> & { audit?: AuditDraft }): Commit {
  return {
    expect: c.expect ?? {},
    puts: c.puts ?? [],
    deletes: c.deletes ?? [],
    ...(c.bump ? { bump: c.bump } : {}),
    audit: c.audit ?? draft('test.commit', []),
  };
}

const byId = (a: { id: string }, b: { id: string }) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for condition');
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function policyStoreContract(name: string, make: () => Promise<MadeStore>): void {
  describe(name, () => {
    let made: MadeStore;
    let store: PolicyStore;
    const extra: PolicyStore[] = [];

    const sibling = async (): Promise<PolicyStore> => {
      if (!made.sibling) return store;
      const s = await made.sibling();
      if (s !== store) extra.push(s);
      return s;
    };

    beforeEach(async () => {
      made = await make();
      store = made.store;
    });
    afterEach(async () => {
      for (const s of extra.splice(0)) await s.close();
      await made.done();
    });

    it('starts empty', async () => {
      expect(await store.snapshot()).toEqual({ seq: 0, records: [], partitions: {} });
      expect(await store.changesSince(0)).toEqual([]);
      expect(await store.audit({ limit: 10 })).toEqual([]);
      await store.ping();
    });

    it('commits and snapshots records, seq and partitions', async () => {
      const t1 = tenant(1);
      const r1 = role(1, 1);
      const st = scopeType('region');
      const res = await store.commit(commitOf({ expect: { tenant_t1: 0, global: 0 }, puts: [t1, r1, st] }));
      expect(res).toEqual({ ok: true, seq: 1 });
      const snap = await store.snapshot();
      expect(snap.seq).toBe(1);
      expect(snap.records.sort(byId)).toEqual([r1, t1, st].sort(byId));
      expect(snap.partitions).toEqual({ tenant_t1: 1, global: 1 });

      // Returned records are copies: mutating them does not change the store.
      (snap.records[0] as { name: string }).name = 'mutated';
      const again = await store.snapshot();
      expect(again.records.sort(byId)).toEqual([r1, t1, st].sort(byId));
    });

    it('increments seq per commit and moves only the touched partitions', async () => {
      expect(await store.commit(commitOf({ puts: [tenant(1)] }))).toEqual({ ok: true, seq: 1 });
      expect(await store.commit(commitOf({ puts: [tenant(2)] }))).toEqual({ ok: true, seq: 2 });
      expect(await store.commit(commitOf({ expect: { tenant_t1: 1 }, puts: [role(1, 1)] }))).toEqual({ ok: true, seq: 3 });
      // A commit with no record changes still gets a seq (its audit entry needs one).
      expect(await store.commit(commitOf({ audit: draft('noop', []) }))).toEqual({ ok: true, seq: 4 });
      const snap = await store.snapshot();
      expect(snap.seq).toBe(4);
      expect(snap.partitions).toEqual({ tenant_t1: 3, tenant_t2: 2 });
    });

    it('bumps a partition without writing a record of it, and a racing commit on it conflicts', async () => {
      await store.commit(commitOf({ puts: [tenant(1), scopeType('region')] }));
      const records = (await store.snapshot()).records.sort(byId);
      const res = await store.commit(commitOf({ expect: { global: 1 }, puts: [tenant(2)], bump: ['global', 'tenant_t1'] }));
      expect(res).toEqual({ ok: true, seq: 2 });
      const snap = await store.snapshot();
      expect(snap.partitions).toEqual({ tenant_t1: 2, tenant_t2: 2, global: 2 });
      // No record of a bumped partition was rewritten.
      expect(snap.records.sort(byId)).toEqual([...records, tenant(2)].sort(byId));
      const events = (await store.changesSince(1)) as ChangeEvent[];
      expect(events).toHaveLength(1);
      expect([...events[0]!.partitions].sort()).toEqual(['global', 'tenant_t1', 'tenant_t2']);
      expect(events[0]!.puts).toEqual([tenant(2)]);
      // A write that read the bumped partitions before the bump is refused.
      const racing = await store.commit(commitOf({ expect: { global: 1, tenant_t1: 1 }, puts: [role(1, 1)] }));
      expect(racing.ok).toBe(false);
      if (!racing.ok) expect([...racing.conflicts].sort()).toEqual(['global', 'tenant_t1']);
      // A bump alone is a commit too.
      expect(await store.commit(commitOf({ expect: { tenant_t1: 2 }, bump: ['tenant_t1'] }))).toEqual({ ok: true, seq: 3 });
      expect((await store.snapshot()).partitions.tenant_t1).toBe(3);
    });

    it('overwrites a record put again', async () => {
      await store.commit(commitOf({ puts: [tenant(1)] }));
      const renamed = tenant(1, { name: 'Renamed', updatedAt: '2025-02-01T00:00:00.000Z' });
      await store.commit(commitOf({ expect: { tenant_t1: 1 }, puts: [renamed] }));
      const snap = await store.snapshot();
      expect(snap.records).toEqual([renamed]);
    });

    it('applies nothing on an optimistic conflict and names the partitions that moved', async () => {
      await store.commit(commitOf({ puts: [tenant(1), tenant(2)] }));
      const before = await store.snapshot();
      const res = await store.commit(
        commitOf({
          expect: { tenant_t1: 0, tenant_t2: 1, tenant_t3: 0, global: 0 },
          puts: [role(1, 1), scopeType('x')],
          deletes: [ref(tenant(2))],
          audit: draft('role.create', ['tenant_t1']),
        }),
      );
      expect(res.ok).toBe(false);
      if (!res.ok) expect(res.conflicts).toEqual(['tenant_t1']);
      const after = await store.snapshot();
      expect(after.seq).toBe(before.seq);
      expect(after.records.sort(byId)).toEqual(before.records.sort(byId));
      expect(after.partitions).toEqual(before.partitions);
      expect(await store.audit({ limit: 10 })).toHaveLength(1);
      expect(await store.changesSince(0)).toHaveLength(1);

      const both = await store.commit(commitOf({ expect: { tenant_t1: 0, tenant_t2: 0 }, puts: [role(1, 1)] }));
      expect(both.ok).toBe(false);
      if (!both.ok) expect([...both.conflicts].sort()).toEqual(['tenant_t1', 'tenant_t2']);

      // A partition never written counts as 0; a future seq is a conflict too.
      expect((await store.commit(commitOf({ expect: { tenant_t9: 5 }, puts: [] }))).ok).toBe(false);
      expect(await store.commit(commitOf({ expect: { tenant_t1: 1, tenant_t9: 0 }, puts: [role(1, 1)] }))).toEqual({
        ok: true,
        seq: 2,
      });
    });

    it("keeps a tenant's users in the tenant's partition: the same person in two tenants never conflicts", async () => {
      // Users are per tenant (README, security): one person in tenants 1 and 2 is two records, one per partition.
      const person = (n: number): UserRecord => ({
        kind: 'user', id: `user_t${n}jane`, tenantId: `tenant_t${n}`, subjectId: `subject_t${n}jane`, kindeId: 'kp_jane', email: 'jane@example.com',
        firstName: 'Jane', lastName: null, defaultTenantId: `tenant_t${n}`, createdAt: AT, updatedAt: AT,
      });
      await store.commit(commitOf({ puts: [tenant(1), tenant(2)] }));
      expect(await store.commit(commitOf({ expect: { tenant_t1: 1 }, puts: [person(1)] }))).toEqual({ ok: true, seq: 2 });
      // Tenant 2 registering the same person moves only tenant 2: a commit that read tenant 1 still applies.
      expect(await store.commit(commitOf({ expect: { tenant_t2: 1 }, puts: [person(2)] }))).toEqual({ ok: true, seq: 3 });
      expect(await store.commit(commitOf({ expect: { tenant_t1: 2 }, puts: [role(1, 1)] }))).toEqual({ ok: true, seq: 4 });
      const snap = await store.snapshot();
      expect(snap.partitions).toEqual({ tenant_t1: 4, tenant_t2: 3 });
      expect(snap.records.filter((r) => r.kind === 'user').sort(byId)).toEqual([person(1), person(2)]);
      expect((await store.changesSince(2)) as ChangeEvent[]).toMatchObject([{ seq: 3, partitions: ['tenant_t2'] }, { seq: 4, partitions: ['tenant_t1'] }]);
    });

    it('deletes records', async () => {
      const t1 = tenant(1);
      const r1 = role(1, 1);
      const r2 = role(1, 2);
      const st = scopeType('region');
      await store.commit(commitOf({ puts: [t1, r1, r2, st] }));
      const res = await store.commit(commitOf({ expect: { tenant_t1: 1 }, deletes: [ref(r1), ref(st)] }));
      expect(res).toEqual({ ok: true, seq: 2 });
      const snap = await store.snapshot();
      expect(snap.records.sort(byId)).toEqual([r2, t1].sort(byId));
      expect(snap.partitions).toEqual({ tenant_t1: 2, global: 2 });
      // Deleting something absent is harmless.
      expect(await store.commit(commitOf({ deletes: [ref(r1)] }))).toEqual({ ok: true, seq: 3 });
      expect((await store.snapshot()).records).toHaveLength(2);
    });

    it('returns contiguous change events after a seq', async () => {
      const t1 = tenant(1);
      const r1 = role(1, 1);
      const st = scopeType('region');
      await store.commit(commitOf({ puts: [t1] }));
      await store.commit(commitOf({ puts: [r1, st] }));
      await store.commit(commitOf({ deletes: [ref(r1)] }));

      const all = await store.changesSince(0);
      expect(all).not.toBe('gap');
      const events = all as ChangeEvent[];
      expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(events[0]).toEqual({ seq: 1, partitions: ['tenant_t1'], puts: [t1], deletes: [] });
      expect(events[1]!.puts.sort(byId)).toEqual([r1, st].sort(byId));
      expect([...events[1]!.partitions].sort()).toEqual(['global', 'tenant_t1']);
      expect(events[2]).toEqual({ seq: 3, partitions: ['tenant_t1'], puts: [], deletes: [ref(r1)] });

      expect(((await store.changesSince(1)) as ChangeEvent[]).map((e) => e.seq)).toEqual([2, 3]);
      expect(await store.changesSince(3)).toEqual([]);
      expect(await store.changesSince(10)).toEqual([]);
    });

    it('delivers commits to watchers, including commits made through another instance', async () => {
      const other = await sibling();
      const seen: ChangeEvent[] = [];
      const stop = store.watch((e) => seen.push(e));
      // Commits through another instance are delivered once the watch has taken its starting point.
      await stop.ready;
      // A second watcher that stays on: it sees the sentinel commit after the stopped one's last chance.
      const sentinelSeen: number[] = [];
      const stopSentinel = store.watch((e) => sentinelSeen.push(e.seq));
      await stopSentinel.ready;

      await other.commit(commitOf({ puts: [tenant(1)] }));
      await store.commit(commitOf({ puts: [role(1, 1)] }));
      await other.commit(commitOf({ deletes: [ref(role(1, 1))] }));
      await waitFor(() => seen.length >= 3);
      expect(seen.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(seen[0]).toEqual({ seq: 1, partitions: ['tenant_t1'], puts: [tenant(1)], deletes: [] });
      expect(seen[2]!.deletes).toEqual([ref(role(1, 1))]);

      stop();
      await other.commit(commitOf({ puts: [tenant(2)] }));
      // Sentinel: once the watcher still on has seen the commit after tenant(2), the stopped one would have
      // seen tenant(2) by then if it still listened (events arrive in seq order).
      await other.commit(commitOf({ puts: [tenant(3)] }));
      await waitFor(() => sentinelSeen.includes(5));
      expect(sentinelSeen).toEqual([1, 2, 3, 4, 5]);
      expect(seen.map((e) => e.seq)).toEqual([1, 2, 3]);
      stopSentinel();
    });

    it('delivers the same events to several watchers', async () => {
      const a: number[] = [];
      const b: number[] = [];
      const stopA = store.watch((e) => a.push(e.seq));
      const stopB = store.watch((e) => b.push(e.seq));
      await Promise.all([stopA.ready, stopB.ready]);
      for (let i = 1; i <= 5; i++) await store.commit(commitOf({ puts: [tenant(i)] }));
      await waitFor(() => a.length >= 5 && b.length >= 5);
      expect(a).toEqual([1, 2, 3, 4, 5]);
      expect(b).toEqual([1, 2, 3, 4, 5]);
      stopA();
      stopB();
    });

    it('answers audit queries newest first, with before, tenantId and limit', async () => {
      await store.commit(commitOf({ puts: [tenant(1)], audit: draft('tenant.create', ['tenant_t1'], { after: [tenant(1)] }) }));
      await store.commit(commitOf({ puts: [tenant(2)], audit: draft('tenant.create', ['tenant_t2'], { requestId: 'req-2' }) }));
      await store.commit(
        commitOf({ puts: [role(1, 1)], audit: draft('role.create', ['tenant_t1'], { principal: 'key_abc', after: [role(1, 1)] }) }),
      );
      await store.commit(commitOf({ puts: [scopeType('x')], audit: draft('scope_type.create', []) }));
      await store.commit(
        commitOf({ deletes: [ref(role(1, 1))], audit: draft('role.delete', ['tenant_t1', 'tenant_t2'], { before: [role(1, 1)] }) }),
      );

      const all = await store.audit({ limit: 100 });
      expect(all.map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
      expect(all[4]).toEqual({ ...draft('tenant.create', ['tenant_t1'], { after: [tenant(1)] }), seq: 1 });
      expect(all[3]).toEqual({ ...draft('tenant.create', ['tenant_t2'], { requestId: 'req-2' }), seq: 2 });
      expect(all[2]!.principal).toBe('key_abc');
      expect(all[0]!.before).toEqual([role(1, 1)]);

      expect((await store.audit({ limit: 2 })).map((e) => e.seq)).toEqual([5, 4]);
      expect((await store.audit({ limit: 100, before: 4 })).map((e) => e.seq)).toEqual([3, 2, 1]);
      expect((await store.audit({ limit: 100, before: 1 })).map((e) => e.seq)).toEqual([]);
      expect((await store.audit({ limit: 100, before: 100 })).map((e) => e.seq)).toEqual([5, 4, 3, 2, 1]);
      expect((await store.audit({ limit: 100, tenantId: 'tenant_t1' })).map((e) => e.seq)).toEqual([5, 3, 1]);
      expect((await store.audit({ limit: 100, tenantId: 'tenant_t2' })).map((e) => e.seq)).toEqual([5, 2]);
      expect((await store.audit({ limit: 100, tenantId: 'tenant_t3' })).map((e) => e.seq)).toEqual([]);
      expect((await store.audit({ limit: 1, tenantId: 'tenant_t1', before: 5 })).map((e) => e.seq)).toEqual([3]);
      expect((await store.audit({ limit: 0 })).map((e) => e.seq)).toEqual([]);
    });

    it('pages audit by tenant over many entries', async () => {
      for (let i = 1; i <= 60; i++) {
        await store.commit(commitOf({ puts: [role(i % 3, i)], audit: draft('role.create', [`tenant_t${i % 3}`]) }));
      }
      const t0 = await store.audit({ limit: 7, tenantId: 'tenant_t0' });
      expect(t0.map((e) => e.seq)).toEqual([60, 57, 54, 51, 48, 45, 42]);
      const page2 = await store.audit({ limit: 100, tenantId: 'tenant_t0', before: 42 });
      expect(page2.map((e) => e.seq)).toEqual([39, 36, 33, 30, 27, 24, 21, 18, 15, 12, 9, 6, 3]);
    });

    it('lets exactly one of several concurrent commits with the same expectation win', async () => {
      const other = await sibling();
      await store.commit(commitOf({ puts: [tenant(1)] }));
      const attempts = Array.from({ length: 8 }, (_, i) =>
        (i % 2 === 0 ? store : other).commit(
          commitOf({ expect: { tenant_t1: 1 }, puts: [role(1, i)], audit: draft('role.create', ['tenant_t1']) }),
        ),
      );
      const results = await Promise.all(attempts);
      const wins = results.filter((r) => r.ok);
      expect(wins).toEqual([{ ok: true, seq: 2 }]);
      for (const r of results) if (!r.ok) expect(r.conflicts).toEqual(['tenant_t1']);
      const snap = await store.snapshot();
      expect(snap.seq).toBe(2);
      expect(snap.records.filter((r) => r.kind === 'role')).toHaveLength(1);
      expect(await store.audit({ limit: 10 })).toHaveLength(2);
    });

    it('gives every concurrent commit without conflicts its own seq', async () => {
      const other = await sibling();
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? store : other).commit(commitOf({ puts: [tenant(i)] }))),
      );
      const seqs = results.map((r) => (r.ok ? r.seq : -1)).sort((a, b) => a - b);
      expect(seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      const events = (await store.changesSince(0)) as ChangeEvent[];
      expect(events.map((e) => e.seq)).toEqual(seqs);
    });
  });
}
