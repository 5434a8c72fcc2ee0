import type { Logger } from 'pino';
import { connectBatchRequestSchema, connectRequestSchema, delegatedKey, packRefresh, refreshRequestSchema, type ConnectBatchResult, type ConnectResponse, type RefreshWire, type SessionGrant } from '../../shared/broker-wire.ts';
import type { Principal } from '../access/principal.ts';
import type { LoginThrottle } from '../credentials/login-throttle.ts';
import type { ExternalTokenVerifier } from '../credentials/trusted-issuer.ts';
import { createConnectDecider, decideConnectBatch } from '../decisions/connect.ts';
import { awaitFreshness, decideEvaluateRequest, evaluateRequestSchema, type EvaluateRequest } from '../decisions/evaluate-request.ts';
import type { Decision } from '../engine/evaluate.ts';
import { sessionGrantFor } from '../engine/session-grant.ts';
import type { PolicyReplica } from '../model/replica.ts';
import { parse } from './validate.ts';
import type { SessionLedger } from '../ledger/session-ledger.ts';
import type { SessionLimits } from '../ledger/session-entry.ts';

export interface DecisionAnswerDeps {
  replica: PolicyReplica;
  clock: () => Date;
  tokenIssuer: string;
  throttle: LoginThrottle;
  verifyUserToken?: ExternalTokenVerifier | null;
  /** The live session ledger allowed CONNECTs reserve their slot in, with the limits that apply. */
  sessions?: { ledger: SessionLedger; limits: SessionLimits; log: Logger };
}

/**
 * The answer of each decision route, from the raw JSON body to the response body: validate, decide, log.
 * One function per route, called by both the Express route and the fast path in front of Express, so the two
 * cannot drift apart. Errors are thrown as ScopeGateErrors; the caller writes them.
 */
export interface DecisionAnswers {
  /** POST /v1/evaluate */
  evaluate(principal: Principal, body: unknown, explain: boolean, log?: Logger): Promise<Decision & { revision: number }>;
  /** POST /v1/broker/connect */
  connect(body: unknown, log: Logger): Promise<ConnectResponse>;
  /** POST /v1/broker/connect/batch */
  connectBatch(body: unknown, log: Logger): Promise<{ results: ConnectBatchResult[] }>;
  /** POST /v1/broker/sessions: the live sessions of these actors re-decided (each delegated one with its principal). */
  refresh(body: unknown): RefreshWire;
}

export function createDecisionAnswers(deps: DecisionAnswerDeps): DecisionAnswers {
  const decideConnect = createConnectDecider(
    { model: () => deps.replica.model, clock: deps.clock, ...(deps.sessions ? { sessions: deps.sessions } : {}) },
    { tokenIssuer: deps.tokenIssuer, throttle: deps.throttle, verifyUserToken: deps.verifyUserToken ?? null },
  );
  return {
    async evaluate(principal, body, explain, log) {
      const input = parse(evaluateRequestSchema, body, 'body');
      await awaitFreshness(deps.replica, input.consistency?.atLeastAsFresh);
      const decision = decideEvaluateRequest(deps.replica.model, input, explain, principal, deps.clock().getTime());
      if (input.onBehalfOf && log) logDelegatedDecision(log, principal, input, decision);
      return decision;
    },

    async connect(body, log) {
      const input = parse(connectRequestSchema, body, 'body');
      const answer = await decideConnect(input);
      logConnect(log, input.clientId, input.username, answer);
      return answer;
    },

    async connectBatch(body, log) {
      const { requests } = parse(connectBatchRequestSchema, body, 'body');
      const results = await decideConnectBatch(decideConnect, requests, log);
      results.forEach((r, i) => {
        if (!('error' in r)) logConnect(log, requests[i]!.clientId, requests[i]!.username, r);
      });
      return { results };
    },

    refresh(body) {
      const { actorIds, delegated } = parse(refreshRequestSchema, body, 'body');
      const model = deps.replica.model;
      const sessions: Record<string, SessionGrant | null> = {};
      for (const id of actorIds) sessions[id] = sessionGrantFor(model, id, null);
      const nowMs = deps.clock().getTime();
      const onBehalf: Record<string, SessionGrant | null> = {};
      for (const d of delegated ?? []) onBehalf[delegatedKey(d.actorId, d.onBehalfOf)] = sessionGrantFor(model, d.actorId, null, { principalSubjectId: d.onBehalfOf, nowMs });
      return packRefresh(deps.replica.seq, sessions, delegated ? onBehalf : undefined);
    },
  };
}

/** One line per CONNECT decision, never with the password. */
function logConnect(log: Logger, clientId: string, username: string, answer: ConnectResponse): void {
  log.info({ clientId: clientId.slice(0, 64), actorId: username.slice(0, 64), decision: answer.decision, reason: answer.decision === 'denied' ? answer.reason : undefined }, 'mqtt connect decision');
}

/** A decision on behalf of a principal is always logged with both sides (who asked, agent, principal, outcome). */
function logDelegatedDecision(log: Logger, principal: Principal, input: EvaluateRequest, d: Decision): void {
  log.info(
    {
      by: principal.id,
      agent: input.actor.subjectId,
      onBehalfOf: input.onBehalfOf?.subjectId,
      scopeId: input.scopeId,
      action: input.action,
      resourceType: input.resource.resourceType,
      decision: d.decision,
      reason: d.reason,
      agentDecision: d.delegation?.agent.decision,
      principalDecision: d.delegation?.principal?.decision ?? null,
      delegationId: d.delegation?.delegationId ?? null,
    },
    'delegated decision',
  );
}
