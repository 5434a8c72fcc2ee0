/**
 * The broker's ledger reporter decides when to send the sidecar the full list of its sessions (a sync): when
 * the ledger forgot the broker, or holds a number of its sessions that nothing in flight explains. A sync of
 * 10,000 sessions costs ~150 ms of broker CPU, so sessions that merely come and go while a report is on its
 * way must not cause one; a ledger that really lost entries must. The sidecar here is a model of its ledger
 * (reserve on an allowed CONNECT, apply each report's events, answer the count), with answers that take a
 * while, as over the network.
 */
import type { Client } from 'aedes';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LedgerReporter } from '../broker/ledger-reporter.ts';
import type { LedgerReport, LedgerReportResponse } from '../shared/broker-wire.ts';

class ModelSidecar {
  readonly sessions = new Set<string>();
  readonly reports: LedgerReport[] = [];
  /** Hook run while a report is on its way (after the sidecar applied it, before the broker has the answer). */
  duringAnswer: () => void = () => undefined;

  async reportLedger(report: LedgerReport): Promise<LedgerReportResponse> {
    this.reports.push(report);
    for (const e of report.events) if (e.type === 'ended') this.sessions.delete(e.sessionId);
    if (report.sync) for (const s of report.sync) this.sessions.add(s.sessionId);
    const answer = { known: true, sessions: this.sessions.size };
    this.duringAnswer();
    await new Promise((r) => setTimeout(r, 5));
    return answer;
  }

  get syncs(): number {
    return this.reports.filter((r) => r.sync).length;
  }
}

let reporter: LedgerReporter | null = null;
afterEach(async () => {
  await reporter?.stop();
  reporter = null;
});

/** A CONNECT decided by the sidecar (which reserves the slot) and then recorded by the broker, as in hooks/connect.ts. */
function connectOne(sidecar: ModelSidecar, r: LedgerReporter, options: { answerArrives: boolean } = { answerArrives: true }) {
  const client = {} as Client;
  const id = r.newSessionId();
  sidecar.sessions.add(id);
  const arrive = () => {
    r.decided();
    r.reserved(client, id, 'act_1', `c-${id}`, undefined);
    r.connected(client);
  };
  if (options.answerArrives) arrive();
  return { client, arrive };
}

/** Waits for `n` more reports (the 10 ms heartbeat sends one even when nothing happened). */
async function reportsUntil(sidecar: ModelSidecar, n: number) {
  const target = sidecar.reports.length + n;
  await vi.waitFor(() => expect(sidecar.reports.length).toBeGreaterThanOrEqual(target), { timeout: 5_000, interval: 2 });
}

describe('LedgerReporter: when the full list is sent', () => {
  it('sessions that connect and end while each report is on its way cause no sync', async () => {
    const sidecar = new ModelSidecar();
    reporter = new LedgerReporter({ sidecar, brokerId: 'brk_1', logger: pino({ level: 'silent' }), heartbeatMs: 10 });
    const r = reporter;
    const held = Array.from({ length: 50 }, () => connectOne(sidecar, r));
    await r.flushed();
    expect(sidecar.syncs).toBe(1); // the first report always carries the list
    let k = 0;
    // Each answer is computed, then before it arrives one session ends and one more connects; and one
    // CONNECT stays decided by the sidecar but not yet answered to the broker.
    const pending: Array<ReturnType<typeof connectOne>> = [];
    sidecar.duringAnswer = () => {
      r.ended(held[k++]!.client);
      held.push(connectOne(sidecar, r));
      pending.push(connectOne(sidecar, r, { answerArrives: false }));
    };
    for (let i = 0; i < 10; i++) {
      await reportsUntil(sidecar, 1);
      pending.shift()?.arrive();
    }
    expect(sidecar.reports.length).toBeGreaterThanOrEqual(11);
    expect(sidecar.syncs).toBe(1);
  });

  it('a ledger that lost entries gets the full list within two reports', async () => {
    const sidecar = new ModelSidecar();
    reporter = new LedgerReporter({ sidecar, brokerId: 'brk_1', logger: pino({ level: 'silent' }), heartbeatMs: 10 });
    const r = reporter;
    Array.from({ length: 20 }, () => connectOne(sidecar, r));
    await r.flushed();
    expect(sidecar.syncs).toBe(1);
    // The ledger loses three entries (e.g. a Redis failover that lost the last writes).
    [...sidecar.sessions].slice(0, 3).forEach((id) => sidecar.sessions.delete(id));
    await reportsUntil(sidecar, 3);
    expect(sidecar.syncs).toBe(2);
    expect(sidecar.sessions.size).toBe(20);
  });
});

describe('LedgerReporter: how often it reports', () => {
  it('a steady stream of session events goes out in at most one report per 50 ms, every event once and in order', async () => {
    const sidecar = new ModelSidecar();
    reporter = new LedgerReporter({ sidecar, brokerId: 'brk_1', logger: pino({ level: 'silent' }), heartbeatMs: 60_000 });
    const r = reporter;
    await r.flushed();
    const before = sidecar.reports.length;
    const started = Date.now();
    // A storm: a session connects every 2 ms or so for a quarter of a second.
    const clients: Client[] = [];
    while (Date.now() - started < 250) {
      clients.push(connectOne(sidecar, r).client);
      await new Promise((res) => setTimeout(res, 2));
    }
    await r.flushed();
    const elapsed = Date.now() - started;
    const reports = sidecar.reports.slice(before);
    // Reporting every 10 ms (plus the 5 ms answer) would take ~17 reports here.
    expect(reports.length).toBeLessThanOrEqual(Math.ceil(elapsed / 50) + 1);
    const connected = reports.flatMap((rep) => rep.events.filter((e) => e.type === 'connected').map((e) => e.sessionId));
    expect(connected).toEqual(clients.map((c) => r.sessionIdOf(c)));
  });
});

