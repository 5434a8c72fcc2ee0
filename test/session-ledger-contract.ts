/**
 * The SessionLedger contract, run against both implementations (session-ledger.test.ts): the in-memory one
 * and the Redis one (two ledgers on one Redis stand for two sidecars).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DisconnectRequest, SessionEntry, SessionLedger } from '../authz-sidecar/ledger/session-ledger.ts';

export interface MadeLedger {
  ledger: SessionLedger;
  /** A second ledger on the same backend (another sidecar); the same object for the in-memory one. */
  sibling: SessionLedger;
  /** Both ledgers read this clock. */
  clock: { now: number };
  done(): Promise<void>;
}

const LEASE = 10_000;

export function entry(n: number, extra: Partial<SessionEntry> = {}): SessionEntry {
  return {
    sessionId: `sess_${n}`,
    brokerId: 'broker-a',
    clientId: `client-${n}`,
    actorId: `actor_${n}`,
    tenantId: 'tenant_1',
    projectId: 'project_1',
    accessScopeId: 'scope_acme',
    scopePath: ['scope_acme', 'scope_project_1', 'scope_workspace_1', 'scope_tenant_1'],
    connectedAt: 1_000 + n,
    state: 'connecting',
    subscriptions: [],
    ...extra,
  };
}

export function sessionLedgerContract(name: string, make: () => Promise<MadeLedger>): void {
  describe(name, () => {
    let m: MadeLedger;
    beforeEach(async () => {
      m = await make();
    });
    afterEach(async () => {
      await m.done();
    });

    it('reserves, lists by tenant/project/scope/actor/broker, counts every scope on the path, releases', async () => {
      const { ledger, sibling } = m;
      expect(await ledger.reserve(entry(1), [], LEASE)).toEqual({ ok: true });
      expect(await ledger.reserve(entry(2, { accessScopeId: 'scope_beta', scopePath: ['scope_beta', 'scope_project_1', 'scope_workspace_1', 'scope_tenant_1'] }), [], LEASE)).toEqual({ ok: true });
      expect(await sibling.reserve(entry(3, { tenantId: 'tenant_2', projectId: 'project_2', brokerId: 'broker-b', scopePath: ['scope_project_2', 'scope_tenant_2'], accessScopeId: null }), [], LEASE)).toEqual({ ok: true });

      expect((await sibling.list()).map((e) => e.sessionId)).toEqual(['sess_1', 'sess_2', 'sess_3']);
      expect((await sibling.list({ tenantId: 'tenant_1' })).map((e) => e.sessionId)).toEqual(['sess_1', 'sess_2']);
      expect((await sibling.list({ projectId: 'project_2' })).map((e) => e.sessionId)).toEqual(['sess_3']);
      expect((await sibling.list({ scopeId: 'scope_beta' })).map((e) => e.sessionId)).toEqual(['sess_2']);
      expect((await sibling.list({ scopeId: 'scope_project_1', actorId: 'actor_1' })).map((e) => e.sessionId)).toEqual(['sess_1']);
      expect((await sibling.list({ brokerId: 'broker-b' })).map((e) => e.sessionId)).toEqual(['sess_3']);
      expect(await sibling.get('sess_1')).toEqual(entry(1));
      expect(await sibling.get('sess_nope')).toBeNull();

      const counts = await sibling.counts(['scope_acme', 'scope_beta', 'scope_project_1', 'scope_tenant_1', 'scope_tenant_2', 'scope_other']);
      expect(Object.fromEntries(counts)).toEqual({ scope_acme: 1, scope_beta: 1, scope_project_1: 2, scope_tenant_1: 2, scope_tenant_2: 1, scope_other: 0 });

      expect(await sibling.release('sess_1')).toBe(true);
      expect(await ledger.release('sess_1')).toBe(false);
      expect((await ledger.list({ tenantId: 'tenant_1' })).map((e) => e.sessionId)).toEqual(['sess_2']);
      expect(Object.fromEntries(await ledger.counts(['scope_acme', 'scope_tenant_1']))).toEqual({ scope_acme: 0, scope_tenant_1: 1 });
    });

    it('refuses a reservation that would reach a limit on any scope of the path, and adds nothing', async () => {
      const { ledger } = m;
      const limits = [
        { scopeId: 'scope_tenant_1', max: 3 },
        { scopeId: 'scope_acme', max: 2 },
      ];
      expect(await ledger.reserve(entry(1), limits, LEASE)).toEqual({ ok: true });
      expect(await ledger.reserve(entry(2), limits, LEASE)).toEqual({ ok: true });
      expect(await ledger.reserve(entry(3), limits, LEASE)).toEqual({ ok: false, scopeId: 'scope_acme', max: 2, count: 2 });
      const beta = (n: number) => entry(n, { accessScopeId: 'scope_beta', scopePath: ['scope_beta', 'scope_tenant_1'] });
      // The caller passes the limits of the session's own path.
      const betaLimits = [{ scopeId: 'scope_tenant_1', max: 3 }];
      expect(await ledger.reserve(beta(4), betaLimits, LEASE)).toEqual({ ok: true });
      expect(await ledger.reserve(beta(5), betaLimits, LEASE)).toEqual({ ok: false, scopeId: 'scope_tenant_1', max: 3, count: 3 });
      expect((await ledger.list()).map((e) => e.sessionId)).toEqual(['sess_1', 'sess_2', 'sess_4']);
      await ledger.release('sess_1');
      expect(await ledger.reserve(entry(3), limits, LEASE)).toEqual({ ok: true });
    });

    it('is exact under concurrent reservations from two sidecars', async () => {
      const { ledger, sibling } = m;
      const limits = [{ scopeId: 'scope_acme', max: 10 }];
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? sibling : ledger).reserve(entry(i, { brokerId: i % 2 ? 'broker-b' : 'broker-a' }), limits, LEASE)));
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect(await ledger.list({ scopeId: 'scope_acme' })).toHaveLength(10);
      expect((await sibling.counts(['scope_acme'])).get('scope_acme')).toBe(10);
    });

    it("sweeps a broker's sessions when its lease runs out; heartbeats keep it", async () => {
      const { ledger, sibling, clock } = m;
      expect(await ledger.heartbeat('broker-a', LEASE)).toEqual({ known: false, sessions: 0 });
      await ledger.reserve(entry(1), [], LEASE);
      await ledger.reserve(entry(2, { brokerId: 'broker-b' }), [], LEASE);
      expect(await sibling.heartbeat('broker-a', LEASE)).toEqual({ known: true, sessions: 1 });

      clock.now += LEASE - 1;
      expect(await sibling.heartbeat('broker-a', LEASE)).toEqual({ known: true, sessions: 1 });
      clock.now += 2; // broker-b's lease (taken at its reservation) has run out; broker-a's was renewed
      expect((await ledger.list()).map((e) => e.sessionId)).toEqual(['sess_1']);
      expect((await ledger.counts(['scope_acme'])).get('scope_acme')).toBe(1);

      clock.now += LEASE + 1;
      expect(await sibling.list()).toEqual([]);
      expect(Object.fromEntries(await ledger.counts(['scope_acme', 'scope_tenant_1']))).toEqual({ scope_acme: 0, scope_tenant_1: 0 });
      // The broker comes back: it is told it was forgotten, so it resyncs.
      expect(await ledger.heartbeat('broker-a', LEASE)).toEqual({ known: false, sessions: 0 });
      // A dead broker's sessions never hold a slot.
      expect(await ledger.reserve(entry(3), [{ scopeId: 'scope_acme', max: 1 }], LEASE)).toEqual({ ok: true });
    });

    it("answers each broker's own count through reservations, releases and a resync", async () => {
      const { ledger, sibling } = m;
      for (let i = 1; i <= 5; i++) await ledger.reserve(entry(i, { brokerId: i <= 3 ? 'broker-a' : 'broker-b' }), [], LEASE);
      expect((await sibling.heartbeat('broker-a', LEASE)).sessions).toBe(3);
      expect((await sibling.heartbeat('broker-b', LEASE)).sessions).toBe(2);
      await sibling.release('sess_2');
      await ledger.release('sess_2'); // released twice: counted once
      await ledger.markConnected('sess_1');
      expect((await ledger.heartbeat('broker-a', LEASE)).sessions).toBe(2);
      // A resync replaces broker-b's sessions with its own list (one kept, one new, one dropped).
      await sibling.sync('broker-b', [entry(4, { brokerId: 'broker-b' }), entry(9, { brokerId: 'broker-b' })], Number.POSITIVE_INFINITY, LEASE);
      expect((await ledger.heartbeat('broker-b', LEASE)).sessions).toBe(2);
      expect((await ledger.heartbeat('broker-a', LEASE)).sessions).toBe(2);
    });

    it('marks sessions connected and keeps their subscriptions (client view)', async () => {
      const { ledger, sibling } = m;
      await ledger.reserve(entry(1), [], LEASE);
      expect(await sibling.markConnected('sess_1')).toBe(true);
      expect(await sibling.setSubscriptions('sess_1', ['my-app/chat/#', 'my-app/alerts'])).toBe(true);
      expect(await ledger.get('sess_1')).toMatchObject({ state: 'connected', subscriptions: ['my-app/chat/#', 'my-app/alerts'] });
      expect(await ledger.setSubscriptions('sess_1', [])).toBe(true);
      expect((await ledger.get('sess_1'))?.subscriptions).toEqual([]);
      expect(await ledger.markConnected('sess_nope')).toBe(false);
      expect(await ledger.setSubscriptions('sess_nope', ['x/y'])).toBe(false);
      await ledger.release('sess_1');
      expect(await ledger.setSubscriptions('sess_1', ['x/y'])).toBe(false);
      expect(await ledger.get('sess_1')).toBeNull();
    });

    it("sync makes a broker's entries what it reports, keeping reservations still on their way", async () => {
      const { ledger, sibling, clock } = m;
      await ledger.reserve(entry(1), [], LEASE);
      await ledger.reserve(entry(2), [], LEASE);
      await ledger.reserve(entry(3, { connectedAt: clock.now }), [], LEASE); // reserved just now
      await ledger.reserve(entry(4, { brokerId: 'broker-b' }), [], LEASE);
      await sibling.sync('broker-a', [entry(2, { state: 'connected', subscriptions: ['a/b'] }), entry(5)], clock.now - 1_000, LEASE);
      expect((await ledger.list()).map((e) => e.sessionId).sort()).toEqual(['sess_2', 'sess_3', 'sess_4', 'sess_5']);
      expect(await ledger.get('sess_2')).toMatchObject({ state: 'connected', subscriptions: ['a/b'] });
      expect((await ledger.counts(['scope_acme'])).get('scope_acme')).toBe(4);
      expect(await ledger.heartbeat('broker-a', LEASE)).toEqual({ known: true, sessions: 3 });
    });

    it('delivers disconnect requests to every sidecar', async () => {
      const { ledger, sibling } = m;
      const heard: DisconnectRequest[] = [];
      const stop = sibling.onDisconnect((r) => heard.push(r));
      await (sibling as { ready?: () => Promise<void> }).ready?.();
      await ledger.requestDisconnect({ sessionId: 'sess_1', brokerId: 'broker-a' });
      const deadline = Date.now() + 5_000;
      while (heard.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(heard).toEqual([{ sessionId: 'sess_1', brokerId: 'broker-a' }]);
      stop();
    });
  });
}
