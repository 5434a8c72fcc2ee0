/** `mqtt explain`: what the broker would decide for an actor's publish or subscribe, step by step. */
import { need, str, UsageError, type Command } from '../framework/command.ts';
import { print } from '../framework/output.ts';

export const mqttCommands: Command[] = [
  {
    name: 'mqtt explain',
    summary: 'may this actor publish / subscribe to this topic? what the broker would decide, and why',
    options: {
      actor: { type: 'string', value: '<actor-id>', help: 'the MQTT actor (its username)', required: true },
      topic: { type: 'string', value: '<topic>', help: 'as the client writes it (a filter for subscribe)', required: true },
      action: { type: 'string', value: '<publish|subscribe>', help: 'default publish' },
    },
    async run(ctx) {
      const action = str(ctx, 'action') ?? 'publish';
      if (action !== 'publish' && action !== 'subscribe') throw new UsageError('--action must be publish or subscribe', ctx.command);
      const e = await ctx.client.mqttExplain({ actorId: need(ctx, 'actor'), topic: need(ctx, 'topic'), action });
      print(ctx, e, () => {
        let out = e.decision === 'ALLOWED' ? `ALLOWED → ${e.internalTopic}\n` : `DENIED (${e.reason})\n`;
        for (const s of e.steps) out += `  ${s.ok ? 'ok  ' : 'FAIL'} ${s.step.padEnd(12)} ${explainStep(s)}\n`;
        return out;
      });
    },
  },
];

/** One step of an MQTT explanation as one line. */
function explainStep(s: Record<string, unknown>): string {
  switch (s.step) {
    case 'actor':
      return String(s.detail);
    case 'topic_rules':
      return s.ok ? `valid topic, app level '${String(s.app)}'` : `refused: ${String(s.reason)}`;
    case 'app_grant': {
      const app = s.app as { slug: string; mode: string; appId: string } | undefined;
      return app ? `granted app '${app.slug}' (${app.mode}, ${app.appId})` : `not granted (granted: ${(s.granted as string[]).join(', ') || 'none'})`;
    }
    case 'rbac':
      if (s.skipped) return 'open app: no permission needed';
      return s.ok ? `allowed by pattern '${String(s.pattern)}' at ${String(s.scopeId)}` : `no ${String(s.action)} pattern allows it (allowed: ${(s.allowedPatterns as string[]).join(', ') || 'none'}; evaluate: ${String((s.evaluate as { reason?: string } | undefined)?.reason ?? '')})`;
    case 'namespace':
      return `namespace '${String(s.namespace)}' → ${String(s.internalTopic)}`;
    default:
      return '';
  }
}
