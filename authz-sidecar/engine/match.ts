import { filterCovers } from '../../shared/topic.ts';

/**
 * Does a permission's `resourcePattern` fit the requested resource?
 * - `*` matches anything, including a request without resourceId;
 * - resourceType `topic`: MQTT filter semantics (the pattern is a filter; the resourceId a topic name, or a
 *   subscription filter that the pattern must cover entirely);
 * - otherwise a glob where `*` matches any run of characters (e.g. `doc-*`).
 * A request without a resourceId asks about the resource type as a whole: only `*` fits it.
 */
export function patternFits(pattern: string, resourceType: string, resourceId: string | undefined): boolean {
  if (pattern === '*') return true;
  if (resourceId === undefined) return false;
  if (resourceType === 'topic') return filterCovers(pattern, resourceId);
  return globMatch(pattern, resourceId);
}

/** `*` in a permission's action or resourceType matches any value. */
export function wildcardFits(pattern: string, value: string): boolean {
  return pattern === '*' || pattern === value;
}

export function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const parts = pattern.split('*');
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!value.startsWith(first) || value.length < first.length + last.length) return false;
  let pos = first.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const idx = value.indexOf(parts[i]!, pos);
    if (idx < 0) return false;
    pos = idx + parts[i]!.length;
  }
  return value.length - last.length >= pos && value.endsWith(last);
}
