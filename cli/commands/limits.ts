/** `limits`: the MQTT limits of the scope tree (SPEC §7) — read what holds at a scope, replace a subtree's. */
import { table } from '../format.ts';
import { idArg, need, UsageError, type Command } from '../framework/command.ts';
import { col, print } from '../framework/output.ts';
import { resolveScope } from '../framework/resource-commands.ts';

export const limitsCommands: Command[] = [
  {
    name: 'limits get',
    summary: 'the MQTT limits at a scope: its own, and the effective ones (minimum along the path) with where each is set',
    args: '<scope-id|tenant-id|project-id>',
    maxPositionals: 1,
    options: {},
    async run(ctx) {
      const at = await ctx.client.limitsAt((await resolveScope(ctx, idArg(ctx)))!);
      print(ctx, at, () => {
        const rows = Object.entries(at.effective.session).map(([name, value]) => ({ limit: name, value: value ?? 'none', setAt: at.effective.sources[name]?.scopeId ?? '' }));
        const subtrees = at.effective.subtrees as Array<Record<string, unknown>>;
        const perSubtree = subtrees.length > 0 ? table(subtrees, Object.keys(subtrees[0]!).map((k) => col(k, k))) : '(none)\n';
        return `own: ${JSON.stringify(at.own)}\n\nper session:\n${table(rows, [col('limit', 'limit'), col('value', 'value'), col('set at', 'setAt')])}\nper subtree:\n${perSubtree}`;
      });
    },
  },
  {
    name: 'limits set',
    summary: 'replace the MQTT limits of a tenant, a project or an access scope (they bound its whole subtree)',
    args: '<tenant-id|project-id|scope-id>',
    maxPositionals: 1,
    options: {
      limits: { type: 'string', value: '<json|none>', help: `the limits object, e.g. '{"maxSessions":100,"publishRate":{"perSession":{"messagesPerSecond":50}}}'`, required: true },
    },
    async run(ctx) {
      const id = idArg(ctx);
      const raw = need(ctx, 'limits');
      let limits: unknown = null;
      if (raw !== 'none' && raw !== 'null') {
        try {
          limits = JSON.parse(raw);
        } catch {
          throw new UsageError('--limits must be a JSON object (or none)', ctx.command);
        }
      }
      // The server validates the object (one zod schema); the CLI only routes it to the entity that holds it.
      const body = { limits } as never;
      const updated = id.startsWith('tenant_') ? await ctx.client.tenants.update(id, body) : id.startsWith('project_') ? await ctx.client.projects.update(id, body) : await ctx.client.scopes.update(id, body);
      print(ctx, updated, () => `${id}: limits ${JSON.stringify((updated as { limits?: unknown }).limits ?? null)} (revision ${updated.revision})\n`);
    },
  },
];
