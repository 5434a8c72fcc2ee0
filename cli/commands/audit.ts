/** `audit tail`: the latest audit entries, and with --follow every new one as it is written. */
import { table } from '../format.ts';
import { flag, num, str, UsageError, type Command, type Ctx } from '../framework/command.ts';
import { COLUMNS, print } from '../framework/output.ts';

export const auditCommands: Command[] = [
  {
    name: 'audit tail',
    summary: 'show the latest audit entries, oldest first (also with --json); --follow keeps printing new ones',
    options: {
      limit: { type: 'string', value: '<n>', help: 'how many (default 20)' },
      follow: { type: 'boolean', short: 'f', help: 'poll every second and print new entries (Ctrl-C stops)' },
      tenant: { type: 'string', value: '<tenant-id>', help: 'only entries about this tenant' },
      who: { type: 'string', value: '<principal>', help: "only entries written by this principal ('admin' or an API key id)" },
      what: { type: 'string', value: '<action>', help: "only this action (e.g. access_scope.move), or a prefix ending in '*' (e.g. 'actor.*')" },
      since: { type: 'string', value: '<time>', help: 'only entries at or after this time: ISO 8601 (2026-12-01T08:00:00Z) or an age (90s, 15m, 2h, 7d)' },
      until: { type: 'string', value: '<time>', help: 'only entries at or before this time (same forms as --since)' },
    },
    async run(ctx) {
      await auditTail(ctx);
    },
  },
];

type AuditEntry = Record<string, unknown> & { seq: number };

async function auditTail(ctx: Ctx): Promise<void> {
  const limitArg = num(str(ctx, 'limit') ?? '20');
  if (typeof limitArg !== 'number' || limitArg < 1) throw new UsageError('--limit must be a positive number', ctx.command);
  const tenantId = str(ctx, 'tenant');
  const filters = auditFilters(ctx);
  const first = await ctx.client.audit({ limit: limitArg, ...(tenantId ? { tenantId } : {}), ...filters });
  const follow = flag(ctx, 'follow');
  const emit = (entries: AuditEntry[], header: boolean) => {
    if (ctx.json) {
      for (const e of entries) ctx.out(`${JSON.stringify(e)}\n`);
      return;
    }
    if (entries.length === 0) return;
    const text = table(entries, COLUMNS.audit);
    ctx.out(header ? text : text.slice(text.indexOf('\n') + 1));
  };
  const ascending = [...first.data].sort((a, b) => a.seq - b.seq);
  if (!follow) {
    // The same order in both forms: oldest first, like a log (the API pages newest first).
    print(ctx, { ...first, data: ascending }, () => table(ascending, COLUMNS.audit));
    return;
  }
  emit(ascending, true);
  let last = ascending.at(-1)?.seq ?? 0;
  let printedHeader = ascending.length > 0;
  let warned = false;
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000));
    try {
      const fresh: AuditEntry[] = [];
      let before: number | undefined;
      // Page back until we reach what was already printed (at most 10 pages per poll).
      for (let i = 0; i < 10; i++) {
        const page = await ctx.client.audit({ limit: 100, ...(before ? { before } : {}), ...(tenantId ? { tenantId } : {}), ...filters });
        const newer = page.data.filter((e) => e.seq > last);
        fresh.push(...newer);
        if (newer.length < page.data.length || page.nextBefore === null || page.nextBefore <= last) break;
        before = page.nextBefore;
      }
      warned = false;
      if (fresh.length === 0) continue;
      fresh.sort((a, b) => a.seq - b.seq);
      emit(fresh, !printedHeader);
      printedHeader = true;
      last = fresh.at(-1)!.seq;
    } catch (e) {
      if (!warned) ctx.warn(`warning: ${e instanceof Error ? e.message : String(e)} (retrying every second)\n`);
      warned = true;
    }
  }
}

/** --who, --what, --since, --until as the API's filters; the server validates them (400 with the field). */
function auditFilters(ctx: Ctx): { principal?: string; action?: string; since?: string; until?: string } {
  const principal = str(ctx, 'who');
  const action = str(ctx, 'what');
  const since = str(ctx, 'since');
  const until = str(ctx, 'until');
  return {
    ...(principal !== undefined ? { principal } : {}),
    ...(action !== undefined ? { action } : {}),
    ...(since !== undefined ? { since: instant(ctx, since, 'since') } : {}),
    ...(until !== undefined ? { until: instant(ctx, until, 'until') } : {}),
  };
}

const AGE_UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** An age (`15m`: that long ago) as an ISO instant; anything else is passed on as written. */
function instant(ctx: Ctx, value: string, flagName: string): string {
  const age = /^(\d{1,9})([smhd])$/.exec(value);
  if (age) return new Date(Date.now() - Number(age[1]) * AGE_UNITS[age[2]!]!).toISOString();
  if (value.trim() === '') throw new UsageError(`--${flagName} needs a time`, ctx.command);
  return value;
}
