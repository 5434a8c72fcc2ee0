/** `evaluate`: ask for a decision, optionally with the trace of the grants considered. */
import type { EvaluateRequest } from '../../client/index.ts';
import { cell, record, table } from '../format.ts';
import { asSent, flag, num, str, type Command } from '../framework/command.ts';
import { col, print } from '../framework/output.ts';
import { resolveScope, resolveSubject } from '../framework/resource-commands.ts';

/** The MQTT facts an evaluate may carry (permission fields, limits), from --qos, --retain, --payload-bytes. */
function mqttContext(ctx: Parameters<Command['run']>[0]): { context?: Record<string, unknown> } {
  const context = { qos: num(str(ctx, 'qos')), retain: flag(ctx, 'retain') || undefined, payloadBytes: num(str(ctx, 'payload-bytes')) };
  return Object.values(context).some((v) => v !== undefined) ? { context } : {};
}

export const evaluateCommands: Command[] = [
  {
    name: 'evaluate',
    summary: 'ask the RBAC engine: may this subject do this action on this kind of resource here? (not the MQTT decision: use `mqtt explain` for what the broker does)',
    options: {
      subject: { type: 'string', value: '<subject-id|user-id|actor-id>', help: 'who asks', required: true },
      'subject-type': { type: 'string', value: '<user|actor>', help: 'default: from the id' },
      scope: { type: 'string', value: '<scope-id>', help: 'where (a scope, or a tenant/workspace/project/environment id)', required: true },
      action: { type: 'string', value: '<action>', help: 'e.g. read, deploy', required: true },
      'resource-type': { type: 'string', value: '<type>', help: 'e.g. document, environment (topic: only the topic permissions of rbac apps)', required: true },
      'resource-id': { type: 'string', value: '<id>', help: 'e.g. the document id' },
      qos: { type: 'string', value: '<0|1|2>', help: 'MQTT context: QoS of the publish/subscribe (permission maxQos)' },
      retain: { type: 'boolean', help: 'MQTT context: a retained publish (permission retain)' },
      'payload-bytes': { type: 'string', value: '<n>', help: 'MQTT context: payload size (maxPayloadBytes limit and permission field)' },
      explain: { type: 'boolean', help: 'print the trace: which grants were considered and why they did or did not apply' },
    },
    async run(ctx) {
      const subject = await resolveSubject(ctx, str(ctx, 'subject'));
      const subjectType = str(ctx, 'subject-type') ?? subject.subjectType;
      const request = {
        actor: { subjectId: subject.subjectId, subjectType },
        scopeId: await resolveScope(ctx, str(ctx, 'scope')),
        action: str(ctx, 'action'),
        resource: { resourceType: str(ctx, 'resource-type'), resourceId: str(ctx, 'resource-id') },
        ...mqttContext(ctx),
      };
      const d = await ctx.client.evaluate(asSent<EvaluateRequest>(request), { explain: flag(ctx, 'explain') });
      print(ctx, d, () => {
        let s = d.decision === 'ALLOWED' ? 'ALLOWED\n' : `DENIED${d.reason ? ` (${d.reason})` : ''}\n`;
        const limit = (d as { limit?: { name: string; value: number; scopeId: string } }).limit;
        if (limit) s += `limit: ${limit.name} = ${limit.value}, set at ${limit.scopeId}\n`;
        if (d.grant) s += record(d.grant, ['roleName', 'roleId', 'permissionKey', 'permissionId', 'membershipId', 'membershipScopeId']);
        s += `path: ${d.path.join(' → ')}\nrevision: ${d.revision}\n`;
        if (subjectType === 'actor' && request.resource.resourceType === 'topic' && d.decision === 'DENIED') {
          s += 'note: over MQTT an actor may also publish/subscribe through an open app it is granted; `scopegate mqtt explain` answers what the broker decides\n';
        }
        if (d.trace) {
          s += `\ntrace:\n${table(d.trace, [col('membership', 'membershipId'), col('at scope', 'membershipScopeId'), col('role', 'roleId'), col('permission', (r) => r.permissionKey ?? r.permissionId), col('result', 'result'), col('reason', (r) => (r.overrideScopeId ? `${cell(r.reason)} @ ${cell(r.overrideScopeId)}` : r.reason))])}`;
        }
        return s;
      });
    },
  },
];
