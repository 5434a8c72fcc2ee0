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
  const first = await ctx.client.audit({ limit: limitArg, ...(tenantId ? { tenantId } : {}) });
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
        const page = await ctx.client.audit({ limit: 100, ...(before ? { before } : {}), ...(tenantId ? { tenantId } : {}) });
        const newer = page.data.filter((e) => e.seq > last);
        fresh.push(...newer);
        if (newer.length < page.data.length || page.nextBefore === null) break;
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
