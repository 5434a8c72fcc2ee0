import type { AppGrant, SessionGrant } from '../shared/broker-wire.ts';
import { DecisionCache } from './decision-cache.ts';
import { filterCovers, mqttMatch, reserveFor, toClient, topicViewKey, type TopicReserve, type TopicView } from '../shared/topic.ts';
import { UNCONSTRAINED, widerConstraint, type ResolvedConstraint } from '../shared/limits.ts';
import type { SessionLimitState } from './limits/session-limits.ts';
import { WeakValues } from './weak-values.ts';
import { decideTopic, subscribeAllows, type Refusal as TopicDecisionRefusal } from '../shared/topic-decision.ts';

/**
 * Everything the broker knows about one connected session, and the pure decisions made from it. Built once
 * per session grant (at CONNECT, and again whenever the change feed makes the broker re-fetch the grant), so
 * that a PUBLISH costs one cache lookup and, on a miss, a topic check and a string concatenation.
 */
export interface SessionState {
  readonly grant: SessionGrant;
  readonly view: TopicView;
  readonly apps: ReadonlyMap<string, AppGrant>;
  /** Client topic → internal topic, or a refusal (see DecisionCache). */
  readonly publishDecisions: DecisionCache<string | Refusal, SessionState>;
  /** Internal topic → the topic in this session's view, or null (not shown); bounded like the above. */
  readonly forwardDecisions: DecisionCache<string | null, SessionState>;
  /** Room a topic name must leave below the limits so it also fits the project-level view. */
  readonly reserve: TopicReserve;
  /**
   * Client topic → the permission fields (maxQos, retain, maxPayloadBytes) that apply to a publish on it;
   * null when no app of the grant carries any, so unconstrained sessions pay nothing for them.
   */
  readonly publishConstraints: DecisionCache<ResolvedConstraint, SessionState> | null;
  /** The scope tree's limits of this session (null where no limit runtime is wired, e.g. pure tests). */
  readonly limits: SessionLimitState | null;
}

/** Why the broker refuses a topic: the shared topic decision's reasons, and a malformed `$share` filter. */
export type Refusal = TopicDecisionRefusal | { refused: 'bad_share' };

/** Subscriptions refused before Aedes sees them are renamed to this: it matches nothing a client can publish. */
export const REFUSED_FILTER = '$scopegate/refused';

/**
 * Apps by slug, one map per apps list: the grants of one refresh answer share their apps lists (see
 * unpackRefresh), so the sessions of a scope re-decided together share one map too.
 */
const appMaps = new WeakMap<readonly AppGrant[], ReadonlyMap<string, AppGrant>>();
function appsBySlug(apps: readonly AppGrant[]): ReadonlyMap<string, AppGrant> {
  let map = appMaps.get(apps);
  if (!map) appMaps.set(apps, (map = new Map(apps.map((a) => [a.slug, a]))));
  return map;
}

export function sessionStateFor(grant: SessionGrant, cacheSize: number, limits: SessionLimitState | null = null): SessionState {
  return new LiveSessionState(grant, cacheSize, limits);
}

/**
 * A session's state. Its publish and forward decision caches are made at their first use: a held session may
 * go long without publishing or being delivered anything, and two empty caches were ~180 B of each.
 */
class LiveSessionState implements SessionState {
  readonly view: TopicView;
  readonly apps: ReadonlyMap<string, AppGrant>;
  readonly reserve: TopicReserve;
  readonly publishConstraints: DecisionCache<ResolvedConstraint, SessionState> | null = null;
  private publishCache: DecisionCache<string | Refusal, SessionState> | null = null;
  private forwardCache: DecisionCache<string | null, SessionState> | null = null;

  constructor(
    readonly grant: SessionGrant,
    private readonly cacheSize: number,
    readonly limits: SessionLimitState | null,
  ) {
    this.view = viewOf(grant);
    this.apps = appsBySlug(grant.apps);
    this.reserve = reserves.get(this.view)!;
    if (grant.apps.some((a) => a.publishConstraints)) this.publishConstraints = new DecisionCache<ResolvedConstraint, SessionState>(cacheSize, publishConstraint, this);
  }

  get publishDecisions(): DecisionCache<string | Refusal, SessionState> {
    return (this.publishCache ??= new DecisionCache<string | Refusal, SessionState>(this.cacheSize, publishTopic, this));
  }

  get forwardDecisions(): DecisionCache<string | null, SessionState> {
    return (this.forwardCache ??= new DecisionCache<string | null, SessionState>(this.cacheSize, forwardTopic, this));
  }
}

/**
 * Topic views by mount and namespace, each with its reserve: the sessions of one access scope share one view
 * instead of two small objects each. Views are never written.
 */
const views = new WeakValues<TopicView>();
const reserves = new WeakMap<TopicView, TopicReserve>();
function viewOf(grant: SessionGrant): TopicView {
  const key = topicViewKey(grant);
  let view = views.get(key);
  if (view && view.mount === grant.mount && view.namespace === grant.namespace) return view;
  view = { mount: grant.mount, namespace: grant.namespace };
  views.set(key, view);
  reserves.set(view, reserveFor(view));
  return view;
}

function publishTopic(clientTopic: string, state: SessionState): string | Refusal {
  return decideTopic(state, clientTopic, 'name');
}

/**
 * The permission fields for a publish on an allowed client topic: of the app's publish filters that match
 * it, the most permissive (a filter without fields allows everything).
 */
function publishConstraint(clientTopic: string, state: SessionState): ResolvedConstraint {
  const slash = clientTopic.indexOf('/');
  const app = state.apps.get(slash < 0 ? clientTopic : clientTopic.slice(0, slash));
  if (!app?.publishConstraints) return UNCONSTRAINED;
  let out: ResolvedConstraint | null = null;
  for (const filter of app.publish) {
    if (!mqttMatch(filter, clientTopic)) continue;
    const c = app.publishConstraints[filter] ?? UNCONSTRAINED;
    out = out ? widerConstraint(out, c) : c;
  }
  return out ?? UNCONSTRAINED;
}

/**
 * The highest QoS a subscription to an allowed client filter is granted: of the app's subscribe filters that
 * cover it, the highest maxQos (MQTT-3.8.4-6: the server may grant a lower QoS than asked; SUBACK shows it).
 */
export function subscribeMaxQos(state: SessionState, clientFilter: string): 0 | 1 | 2 {
  const slash = clientFilter.indexOf('/');
  const app = state.apps.get(slash < 0 ? clientFilter : clientFilter.slice(0, slash));
  if (!app?.subscribeConstraints) return 2;
  let max: 0 | 1 | 2 | -1 = -1;
  for (const filter of app.subscribe) {
    if (!filterCovers(filter, clientFilter)) continue;
    const q = app.subscribeConstraints[filter]?.maxQos ?? 2;
    if (q > max) max = q;
  }
  return max < 0 ? 2 : (max as 0 | 1 | 2);
}

/** PUBLISH (and will): the internal topic to publish to, or why not. Cached per session. */
export function decidePublish(state: SessionState, clientTopic: string): string | Refusal {
  return state.publishDecisions.decide(clientTopic);
}

/** SUBSCRIBE / UNSUBSCRIBE: the internal filter, or why not. Not cached (rare, and filters vary). */
export function decideSubscribe(state: SessionState, clientFilter: string): string | Refusal {
  return decideTopic(state, clientFilter, 'filter');
}

/**
 * A message about to be delivered: the topic in the subscriber's own view, or null when it lies outside
 * the subscriber's view or app grants (then it is not delivered at all).
 */
export function decideForward(state: SessionState, internalTopic: string): string | null {
  // Cached: a delivery is then one lookup instead of slicing and joining strings per message and subscriber.
  return state.forwardDecisions.decide(internalTopic);
}

function forwardTopic(internalTopic: string, state: SessionState): string | null {
  const clientTopic = toClient(state.view, internalTopic);
  if (clientTopic === null) return null;
  const slash = clientTopic.indexOf('/');
  const app = state.apps.get(slash < 0 ? clientTopic : clientTopic.slice(0, slash));
  if (!app) return null;
  // `rbac` apps: only what a subscribe permission of today allows is delivered — also a message queued for a
  // persistent session under a subscription made before the permission was revoked.
  if (app.mode === 'rbac' && !subscribeAllows(app, clientTopic)) return null;
  return clientTopic;
}

/**
 * A subscription Aedes holds (internal filter), checked again against a (possibly new) grant: still allowed
 * only if it maps back into the view and the client-view filter would be allowed today.
 */
export function subscriptionStillAllowed(state: SessionState, internalFilter: string): boolean {
  const clientFilter = toClient(state.view, internalFilter);
  if (clientFilter === null) return false;
  const decision = decideSubscribe(state, clientFilter);
  return typeof decision === 'string' && decision === internalFilter;
}

export function isRefusal(d: string | Refusal): d is Refusal {
  return typeof d !== 'string';
}
