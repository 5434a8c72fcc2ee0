/**
 * Many MQTT filters, indexed as a tree of topic levels, so that "does any of them match this topic name?"
 * costs one walk down the topic's levels instead of one match per filter. An `rbac` app whose role holds
 * 1,000 topic permissions is the case it exists for: a publish that misses the decision cache used to be
 * matched against every pattern in turn.
 *
 * Same meaning as `mqttMatch` over each filter (property-tested against it): `+` is one level, `#` as the
 * last level is this level and everything below (`a/#` matches `a`), and a filter with `#` anywhere else is
 * malformed and matches nothing but itself.
 */
interface Level {
  exact: Map<string, Level> | null;
  plus: Level | null;
  /** A filter ends here with `/#` (or is `#` at the root). */
  hash: boolean;
  /** A filter ends exactly here. */
  end: boolean;
}

const newLevel = (): Level => ({ exact: null, plus: null, hash: false, end: false });

export class FilterIndex {
  private readonly root = newLevel();
  /** Filters matched only by a topic equal to them (malformed ones, see above). */
  private readonly literal = new Set<string>();
  readonly size: number;

  constructor(filters: Iterable<string>) {
    let n = 0;
    for (const f of filters) {
      this.add(f);
      n++;
    }
    this.size = n;
  }

  private add(filter: string): void {
    const levels = filter.split('/');
    let node = this.root;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      if (level === '#') {
        if (i === levels.length - 1) node.hash = true;
        else this.literal.add(filter);
        return;
      }
      if (level === '+') node = node.plus ??= newLevel();
      else {
        node.exact ??= new Map();
        let next = node.exact.get(level);
        if (!next) node.exact.set(level, (next = newLevel()));
        node = next;
      }
    }
    node.end = true;
  }

  /** Does any filter match topic name `topic`? */
  matches(topic: string): boolean {
    if (this.literal.size > 0 && this.literal.has(topic)) return true;
    return walk(this.root, topic.split('/'), 0);
  }
}

function walk(node: Level, levels: string[], i: number): boolean {
  if (node.hash) return true;
  if (i === levels.length) return node.end;
  const next = node.exact?.get(levels[i]!);
  if (next && walk(next, levels, i + 1)) return true;
  return node.plus !== null && walk(node.plus, levels, i + 1);
}
