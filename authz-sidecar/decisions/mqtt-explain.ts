import { z } from 'zod';
import type { AppGrant } from '../../shared/broker-wire.ts';
import { ScopeGateError } from '../../shared/errors.ts';
import { anyFilterAllows, checkClientTopic, reserveFor, type TopicView } from '../../shared/topic.ts';
import { decideTopic, type TopicDecisionRefusal } from '../../shared/topic-decision.ts';
import { assertCovers, type Principal } from '../access/principal.ts';
import { evaluate, type Decision } from '../engine/evaluate.ts';
import { sessionGrantFor } from '../engine/session-grant.ts';
import type { PolicyModel } from '../model/policy-model.ts';

export const mqttExplainSchema = z.strictObject({
  actorId: z.string().min(1).max(120),
  /** The topic (publish) or filter (subscribe) as the client writes it. */
  topic: z.string().max(65_535),
  action: z.enum(['publish', 'subscribe']),
});
export type MqttExplainRequest = z.infer<typeof mqttExplainSchema>;

type Step =
  | { step: 'actor'; ok: boolean; detail: string }
  | { step: 'topic_rules'; ok: boolean; reason?: string; app?: string }
  | { step: 'app_grant'; ok: boolean; app?: Pick<AppGrant, 'appId' | 'slug' | 'mode'>; granted: string[] }
  | { step: 'rbac'; ok: boolean; skipped: boolean; action: string; scopeId: string; pattern?: string; allowedPatterns: string[]; evaluate?: Decision }
  | { step: 'namespace'; ok: true; namespace: string; internalTopic: string };

export interface MqttExplanation {
  decision: 'ALLOWED' | 'DENIED';
  reason?: TopicDecisionRefusal | 'actor_may_not_connect';
  actor: { actorId: string; subjectId: string; tenantId: string; projectId: string; accessScopeId: string | null; disabled: boolean };
  /** The topic inside the broker, when allowed. */
  internalTopic: string | null;
  /** What decided, in the order the broker decides: actor → topic rules → app grant → rbac → namespace. */
  steps: Step[];
  revision: number;
}

/**
 * "May actor A publish (or subscribe to) topic T?" — answered with what the broker itself would do: the
 * actor's session grant (engine/session-grant.ts, the same one a CONNECT gets) and the shared topic decision
 * (shared/topic-decision.ts, the same function the broker runs per packet). The steps say what decided:
 * whether the actor may connect, the topic rules, the app grant, for `rbac` apps the permission pattern that
 * allowed it (with evaluate's walk up the scope tree), and the namespace the topic is rewritten into.
 */
export function explainMqtt(model: PolicyModel, input: MqttExplainRequest, principal: Principal): MqttExplanation {
  const actor = model.get('actor', input.actorId);
  if (!actor) throw new ScopeGateError('NOT_FOUND', `actor '${input.actorId.slice(0, 80)}' does not exist.`, [{ path: 'body.actorId', message: 'no such actor' }]);
  const project = model.get('project', actor.projectId);
  assertCovers(model, principal, actor.accessScopeId ?? project?.scopeId ?? null);
  const base = {
    actor: { actorId: actor.id, subjectId: actor.subjectId, tenantId: actor.tenantId, projectId: actor.projectId, accessScopeId: actor.accessScopeId, disabled: actor.disabled },
    revision: model.seq,
  };
  const steps: Step[] = [];
  const deny = (reason: MqttExplanation['reason']): MqttExplanation => ({ decision: 'DENIED', reason, internalTopic: null, steps, ...base });

  const grant = sessionGrantFor(model, actor.id, null);
  if (!grant) {
    steps.push({ step: 'actor', ok: false, detail: actor.disabled ? 'the actor is disabled' : 'the actor is not inside its project (or the project is gone)' });
    return deny('actor_may_not_connect');
  }
  steps.push({ step: 'actor', ok: true, detail: grant.accessScopeId ? `scoped to ${grant.accessScopeId} (namespace '${grant.namespace}')` : 'project-level actor (writes the namespace itself)' });

  const view: TopicView = { mount: grant.mount, namespace: grant.namespace };
  const g = { view, apps: new Map(grant.apps.map((a) => [a.slug, a])), reserve: reserveFor(view) };
  const kind = input.action === 'publish' ? 'name' : 'filter';
  const decided = decideTopic(g, input.topic, kind);

  const check = checkClientTopic(input.topic, kind, kind === 'name' ? g.reserve : undefined);
  if (!check.ok) {
    steps.push({ step: 'topic_rules', ok: false, reason: check.reason });
    return deny(check.reason);
  }
  steps.push({ step: 'topic_rules', ok: true, app: check.app });

  const app = g.apps.get(check.app);
  const granted = grant.apps.map((a) => a.slug);
  if (!app) {
    steps.push({ step: 'app_grant', ok: false, granted });
    return deny('app_not_granted');
  }
  steps.push({ step: 'app_grant', ok: true, app: { appId: app.appId, slug: app.slug, mode: app.mode }, granted });

  const decisionScope = actor.accessScopeId ?? project!.scopeId;
  const patterns = kind === 'name' ? app.publish : app.subscribe;
  if (app.mode === 'open') {
    steps.push({ step: 'rbac', ok: true, skipped: true, action: input.action, scopeId: decisionScope, allowedPatterns: patterns });
  } else {
    const pattern = patterns.find((p) => anyFilterAllows([p], input.topic, kind));
    const walk = evaluate(model, { subjectId: actor.subjectId, subjectType: 'actor', scopeId: decisionScope, action: input.action, resourceType: 'topic', resourceId: input.topic }, true);
    if (principal.kind === 'apiKey' && walk.trace) walk.trace = walk.trace.filter((s) => model.get('membership', s.membershipId)?.tenantId === principal.tenantId);
    steps.push({ step: 'rbac', ok: pattern !== undefined, skipped: false, action: input.action, scopeId: decisionScope, ...(pattern ? { pattern } : {}), allowedPatterns: patterns, evaluate: walk });
  }
  if (typeof decided !== 'string') return deny(decided.refused);
  steps.push({ step: 'namespace', ok: true, namespace: grant.namespace, internalTopic: decided });
  return { decision: 'ALLOWED', internalTopic: decided, steps, ...base };
}
