import type { AppGrant } from './broker-wire.ts';
import { FilterIndex } from './filter-index.ts';
import { anyFilterAllows, checkClientTopic, toInternal, type TopicRefusal, type TopicReserve, type TopicView } from './topic.ts';

/**
 * The one decision of a client's topic against a session grant, shared by the broker (every PUBLISH and
 * SUBSCRIBE, from the session's state) and the sidecar (`POST /v1/mqtt/explain`), so explain tells exactly
 * what the broker does: topic rules → app grant → for `rbac` apps an allowed pattern → the internal topic.
 */
export interface TopicGrantView {
  readonly view: TopicView;
  /** Granted apps by slug (the first topic level). */
  readonly apps: ReadonlyMap<string, AppGrant>;
  /** Room a topic name must leave below the limits so it also fits the project-level view. */
  readonly reserve: TopicReserve;
}

export type TopicDecisionRefusal = TopicRefusal | 'app_not_granted' | 'not_permitted';
export type Refusal = { refused: TopicDecisionRefusal };

/** The internal topic (or filter) for `topic`, or why it is refused. `kind`: topic name or subscription filter. */
export function decideTopic(g: TopicGrantView, topic: string, kind: 'name' | 'filter'): string | Refusal {
  // Topic names get the reserve of the widest view (see reserveFor); filters are the subscriber's own.
  const check = checkClientTopic(topic, kind, kind === 'name' ? g.reserve : undefined);
  if (!check.ok) return { refused: check.reason };
  const app = g.apps.get(check.app);
  if (!app) return { refused: 'app_not_granted' };
  if (app.mode === 'rbac') {
    // A topic name is matched against every publish permission of the app at once (one walk of an index),
    // not one permission at a time: roles with 1,000 topic permissions are normal. Filters are rare.
    const allowed = kind === 'name' ? publishIndexOf(app).matches(topic) : anyFilterAllows(app.subscribe, topic, 'filter');
    if (!allowed) return { refused: 'not_permitted' };
  }
  return toInternal(g.view, topic);
}

/**
 * Whether an `rbac` app's subscribe permissions allow a message on `clientTopic` to be delivered (every
 * delivery of an rbac app's topic is checked: live, retained, queued). One walk of an index, like publishes.
 */
export function subscribeAllows(app: AppGrant, clientTopic: string): boolean {
  return indexOf(subscribeIndexes, app, app.subscribe).matches(clientTopic);
}

/** An app grant's publish (or subscribe) filters as one index, built at its first use and kept as long as the grant. */
const publishIndexes = new WeakMap<AppGrant, FilterIndex>();
const subscribeIndexes = new WeakMap<AppGrant, FilterIndex>();
function publishIndexOf(app: AppGrant): FilterIndex {
  return indexOf(publishIndexes, app, app.publish);
}
function indexOf(indexes: WeakMap<AppGrant, FilterIndex>, app: AppGrant, filters: readonly string[]): FilterIndex {
  let index = indexes.get(app);
  if (!index) indexes.set(app, (index = new FilterIndex(filters)));
  return index;
}
