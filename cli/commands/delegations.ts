/**
 * `delegations`: on-behalf-of grants (an agent actor may act for a principal, issue 14). An admin manages anyone's;
 * a principal manages its own by passing its own credential as --token: an actor its ScopeGate JWT, a user its
 * identity provider's JWT. The delegated token itself is `token issue --on-behalf-of <subject-id>`.
 */
import { ACTOR_FLAG, idArg, need, num, org, projectOpts, str, type Command, type OptSpec } from '../framework/command.ts';
import { printDeleted, printPage, showOne } from '../framework/output.ts';

const AS_PRINCIPAL = ' (--token: an admin token or API key, or the principal\'s own credential: an actor\'s JWT, a user\'s identity-provider JWT)';
const AGENT: OptSpec = { ...ACTOR_FLAG, help: 'the agent actor (instead of the <actor-id> argument)' };

export const delegationsCommands: Command[] = [
  {
    name: 'delegations grant',
    summary: `let an agent act on behalf of a principal for a bounded time${AS_PRINCIPAL}`,
    args: '<actor-id>',
    maxPositionals: 1,
    options: {
      ...projectOpts,
      actor: AGENT,
      subject: { type: 'string', value: '<subject-id>', help: "the principal's subjectId (a user's or an actor's; as the principal: your own)", required: true },
      expires: { type: 'string', value: '<seconds>', help: 'lifetime of the grant (default 86400, at most 30 days)' },
    },
    async run(ctx) {
      const expires = num(str(ctx, 'expires'));
      const body = { subjectId: need(ctx, 'subject'), ...(expires === undefined ? {} : { expiresInSeconds: expires as number }) };
      showOne(ctx, 'delegation', await org(ctx).actors.grantDelegation(idArg(ctx, 'actor'), body));
    },
  },
  {
    name: 'delegations list',
    summary: `list an agent's delegation grants (a principal sees only its own)${AS_PRINCIPAL}`,
    args: '<actor-id>',
    maxPositionals: 1,
    options: { ...projectOpts, actor: AGENT },
    async run(ctx) {
      printPage(ctx, 'delegation', await org(ctx).actors.listDelegations(idArg(ctx, 'actor')));
    },
  },
  {
    name: 'delegations revoke',
    summary: `revoke a delegation grant; sessions acting on it close (a principal revokes only its own)${AS_PRINCIPAL}`,
    args: '<delegation-id>',
    maxPositionals: 1,
    options: {
      ...projectOpts,
      actor: { type: 'string', value: '<actor-id>', help: 'the agent actor', required: true },
      delegation: { type: 'string', value: '<delegation-id>', help: 'the grant (instead of the <delegation-id> argument)' },
    },
    async run(ctx) {
      printDeleted(ctx, await org(ctx).actors.revokeDelegation(need(ctx, 'actor'), idArg(ctx, 'delegation')));
    },
  },
];
