/**
 * MQTT topic rules of ScopeGate, as pure functions shared by the broker (rewrite on every packet) and the
 * sidecar (permission patterns of resourceType `topic`).
 *
 * A client writes `<app>/<rest>`. Inside the broker that topic lives at
 * `<mount>/<app>/<namespace>/<rest>`: the mount is the actor's project (`$sg/<projectId>`), never shown to
 * clients; the namespace is the slug path of the actor's access scope below the project ('' for project-level
 * actors, who therefore write the namespace themselves: `<app>/<scope>/<rest>`).
 *
 * Everything a client sends is checked by `checkClientTopic` before it is rewritten; only what passes may be
 * passed to `toInternal`. The checks are what keep a client inside its namespace: no `$` topics, no wildcard
 * app level, no empty or `..` levels, no control characters, bounded length and depth.
 */

/** Limits on what a client may write (the client's view, before the mount and namespace are added). */
export const TOPIC_LIMITS = Object.freeze({ maxBytes: 1024, maxLevels: 16 });

/** Every project mount starts with this; the sidecar builds mounts as `${INTERNAL_PREFIX}<projectId>`. */
export const INTERNAL_PREFIX = '$sg/';

/** Where an actor's topics live inside the broker. */
export interface TopicView {
  /** Internal prefix of the actor's project, e.g. `$sg/project_abc`; never visible to clients. It starts with `$`
   *  so that no client topic can ever equal an internal one (clients may not write `$` topics), which also lets
   *  the broker tell an internal topic from one already in a client's view. */
  mount: string;
  /** Slug path of the access scope below the project (`acme-corp`, `production/downtown-tower`) or ''. */
  namespace: string;
}

/** One string naming a topic view (mount and namespace), for the broker's maps of what sessions of a view share. */
export function topicViewKey(view: TopicView): string {
  return `${view.mount}\n${view.namespace}`;
}

export type TopicRefusal =
  | 'empty'
  | 'too_long'
  | 'too_deep'
  | 'system_topic'
  | 'bad_character'
  | 'empty_level'
  | 'dot_level'
  | 'wildcard_in_name'
  | 'bad_wildcard'
  | 'wildcard_app';

export type TopicCheck = { ok: true; app: string } | { ok: false; reason: TopicRefusal };

/**
 * Room to keep free below the limits. A scoped client's topic reaches project-level sessions with the
 * namespace added (`<app>/<namespace>/<rest>`), so it must fit the limits in that widest view too.
 */
export interface TopicReserve {
  bytes: number;
  levels: number;
}
const NO_RESERVE: TopicReserve = Object.freeze({ bytes: 0, levels: 0 });

/** The reserve a scoped view needs for its topics to fit the limits in the project-level view. */
export function reserveFor(view: TopicView): TopicReserve {
  if (view.namespace === '') return NO_RESERVE;
  return { bytes: Buffer.byteLength(view.namespace, 'utf8') + 1, levels: view.namespace.split('/').length };
}

/**
 * Is `topic` something a client may write? `kind` says whether it is a topic name (PUBLISH, will) or a
 * subscription filter (SUBSCRIBE, UNSUBSCRIBE). On success returns the app slug (the first level).
 *
 * One pass over the characters, no regular expression and no split: this runs on every publish to a topic
 * a session has not used recently. Refused: C0 controls (NUL included), DEL, C1 controls, lone surrogates,
 * U+FFFE/U+FFFF, empty levels, `.` and `..` levels, misplaced wildcards, a wildcard app level, and topics
 * over the length and depth limits.
 */
export function checkClientTopic(topic: unknown, kind: 'name' | 'filter', reserve: TopicReserve = NO_RESERVE): TopicCheck {
  if (typeof topic !== 'string' || topic.length === 0) return { ok: false, reason: 'empty' };
  const n = topic.length;
  const maxBytes = TOPIC_LIMITS.maxBytes - reserve.bytes;
  const maxLevels = TOPIC_LIMITS.maxLevels - reserve.levels;
  // UTF-8 length is at most 3 bytes per UTF-16 unit; only measure exactly when it could matter.
  if (n * 3 > maxBytes && Buffer.byteLength(topic, 'utf8') > maxBytes) return { ok: false, reason: 'too_long' };
  if (topic.charCodeAt(0) === 36 /* $ */) return { ok: false, reason: 'system_topic' };
  let levels = 1;
  let levelStart = 0;
  let appEnd = -1;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? topic.charCodeAt(i) : 47; /* the end closes the last level like a '/' */
    if (c === 47 /* / */) {
      const len = i - levelStart;
      if (len === 0) return { ok: false, reason: 'empty_level' };
      if (topic.charCodeAt(levelStart) === 46 /* . */ && (len === 1 || (len === 2 && topic.charCodeAt(levelStart + 1) === 46))) {
        return { ok: false, reason: 'dot_level' };
      }
      if (appEnd < 0) appEnd = i;
      if (i < n && ++levels > maxLevels) return { ok: false, reason: 'too_deep' };
      levelStart = i + 1;
      continue;
    }
    if (c === 43 /* + */ || c === 35 /* # */) {
      if (kind === 'name') return { ok: false, reason: 'wildcard_in_name' };
      const alone = i === levelStart && (i + 1 === n || topic.charCodeAt(i + 1) === 47);
      if (!alone || (c === 35 && i + 1 !== n)) return { ok: false, reason: 'bad_wildcard' };
      if (levelStart === 0) return { ok: false, reason: 'wildcard_app' };
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfffe || c === 0xffff) return { ok: false, reason: 'bad_character' };
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate must be followed by a low one; a low one must follow a high one (checked here).
      const next = i + 1 < n ? topic.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || next < 0xdc00 || next > 0xdfff) return { ok: false, reason: 'bad_character' };
      i++;
    }
  }
  return { ok: true, app: topic.slice(0, appEnd) };
}

/**
 * The internal topic (or filter) for a client's topic that passed `checkClientTopic`:
 * `<app>/<rest>` → `<mount>/<app>/<namespace>/<rest>`.
 */
export function toInternal(view: TopicView, clientTopic: string): string {
  if (view.namespace === '') return `${view.mount}/${clientTopic}`;
  const slash = clientTopic.indexOf('/');
  if (slash < 0) return `${view.mount}/${clientTopic}/${view.namespace}`;
  return `${view.mount}/${clientTopic.slice(0, slash)}/${view.namespace}${clientTopic.slice(slash)}`;
}

/**
 * The client's view of an internal topic, or null when the topic lies outside the view (another project,
 * another scope, or a broker-internal topic such as `$SYS/...`). Exact inverse of `toInternal`.
 */
export function toClient(view: TopicView, internalTopic: string): string | null {
  const mount = view.mount;
  if (internalTopic.length <= mount.length + 1 || !internalTopic.startsWith(mount) || internalTopic.charCodeAt(mount.length) !== 47) {
    return null;
  }
  const rest = internalTopic.slice(mount.length + 1);
  if (view.namespace === '') return rest;
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const app = rest.slice(0, slash);
  const afterApp = rest.slice(slash + 1);
  const ns = view.namespace;
  if (afterApp === ns) return app;
  if (afterApp.length > ns.length && afterApp.startsWith(ns) && afterApp.charCodeAt(ns.length) === 47) {
    return `${app}${afterApp.slice(ns.length)}`;
  }
  return null;
}

/** Does MQTT filter `filter` match topic name `topic`? (`+` one level, `#` this level and all below.) */
export function mqttMatch(filter: string, topic: string): boolean {
  if (filter === topic) return true;
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!;
    // `#` is a wildcard only as the last level; a filter with `#` elsewhere is malformed and matches nothing
    // (fail closed: a permission pattern `app/#/x` must not grant all of `app/#`).
    if (level === '#') return i === f.length - 1;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}

/**
 * Does filter `outer` cover filter `inner` entirely, i.e. does every topic `inner` matches also match `outer`?
 * A topic name is a filter without wildcards, so this also answers "does `outer` match this topic".
 */
export function filterCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  const o = outer.split('/');
  const n = inner.split('/');
  for (let i = 0; i < o.length; i++) {
    const level = o[i]!;
    if (level === '#') return i === o.length - 1; // malformed `#` (not last) covers nothing, as in mqttMatch
    if (i >= n.length) return false;
    const other = n[i]!;
    if (other === '#') return false;
    if (level === '+') continue;
    if (other === '+' || other !== level) return false;
  }
  return o.length === n.length;
}

/** Is the client-view topic allowed by any of the filters (publish: match; subscribe: cover)? */
export function anyFilterAllows(filters: readonly string[], clientTopic: string, kind: 'name' | 'filter'): boolean {
  for (const f of filters) {
    if (kind === 'name' ? mqttMatch(f, clientTopic) : filterCovers(f, clientTopic)) return true;
  }
  return false;
}

/** What a client writes to join a shared subscription group: `$share/<group>/<filter>` (MQTT 5 form, also used over 3.1.1). */
export const SHARE_PREFIX = '$share/';
/** Longest group name accepted (bytes), so the group adds little to the internal filter. */
export const MAX_SHARE_GROUP_BYTES = 128;

export type SharedFilter = { group: string; filter: string };

/**
 * `$share/<group>/<filter>` split into the group and the filter inside, or null when `clientFilter` is not a
 * shared subscription. The group is one level that is not a wildcard and has no control characters; the
 * filter inside is checked like any other filter by the caller. A malformed `$share` filter is refused with
 * `bad_share`.
 */
export function parseSharedFilter(clientFilter: string): SharedFilter | { refused: 'bad_share' } | null {
  if (!clientFilter.startsWith(SHARE_PREFIX)) return null;
  const slash = clientFilter.indexOf('/', SHARE_PREFIX.length);
  if (slash < 0) return { refused: 'bad_share' };
  const group = clientFilter.slice(SHARE_PREFIX.length, slash);
  const check = checkClientTopic(group, 'name');
  if (!check.ok || group.includes('/') || Buffer.byteLength(group, 'utf8') > MAX_SHARE_GROUP_BYTES) return { refused: 'bad_share' };
  return { group, filter: clientFilter.slice(slash + 1) };
}

/**
 * The filter matching exactly the topics both filters match, or null when they share none (used for the
 * intersection of an agent's and its principal's topic permissions). Both must be well-formed filters.
 */
export function intersectFilters(a: string, b: string): string | null {
  const x = a.split('/');
  const y = b.split('/');
  const out: string[] = [];
  for (let i = 0; ; i++) {
    const p = x[i];
    const q = y[i];
    if (p === '#') return [...out, ...y.slice(i)].join('/') || null;
    if (q === '#') return [...out, ...x.slice(i)].join('/') || null;
    if (p === undefined || q === undefined) return p === q ? out.join('/') : null;
    if (p === '+') out.push(q);
    else if (q === '+' || p === q) out.push(p);
    else return null;
  }
}
