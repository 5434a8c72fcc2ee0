/** `sessions`: the live MQTT sessions the brokers report, and disconnecting one. */
import { table } from '../format.ts';
import { idArg, num, str, UsageError, type Command } from '../framework/command.ts';
import { COLUMNS, print } from '../framework/output.ts';

export const sessionsCommands: Command[] = [
  {
    name: 'sessions list',
    summary: 'live MQTT sessions: actor, broker, since when, subscriptions (client view)',
    options: {
      tenant: { type: 'string', value: '<tenant-id>', help: 'only this tenant' },
      project: { type: 'string', value: '<project-id>', help: 'only this project' },
      scope: { type: 'string', value: '<scope-id>', help: 'only sessions in this scope or below it' },
      actor: { type: 'string', value: '<actor-id>', help: 'only this actor' },
      broker: { type: 'string', value: '<broker-id>', help: 'only this broker' },
      limit: { type: 'string', value: '<n>', help: 'at most n (default 100, max 1000)' },
    },
    async run(ctx) {
      const limit = num(str(ctx, 'limit'));
      if (limit !== undefined && typeof limit !== 'number') throw new UsageError('--limit must be a number', ctx.command);
      const query = { tenantId: str(ctx, 'tenant'), projectId: str(ctx, 'project'), scopeId: str(ctx, 'scope'), actorId: str(ctx, 'actor'), brokerId: str(ctx, 'broker'), ...(limit === undefined ? {} : { limit }) };
      const res = await ctx.client.sessions(Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined)));
      print(ctx, res, () => `${table(res.data as unknown as Array<Record<string, unknown>>, COLUMNS.session)}${res.total > res.data.length ? `(${res.data.length} of ${res.total})\n` : ''}`);
    },
  },
  {
    name: 'sessions disconnect',
    summary: 'ask the owning broker to close a live session',
    args: '<session-id>',
    maxPositionals: 1,
    options: {},
    async run(ctx) {
      const res = await ctx.client.disconnectSession(idArg(ctx));
      print(ctx, res, () => `disconnect requested: ${res.sessionId} on ${res.brokerId}\n`);
    },
  },
];
