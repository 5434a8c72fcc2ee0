/**
 * Small output helpers for the CLI: a plain-text table and a key/value block. No colors, no dependencies, so
 * the output stays greppable and pastes cleanly.
 */

export interface Column {
  /** Header text. */
  header: string;
  /** A field name, or a function of the row. */
  value: string | ((row: Record<string, unknown>) => unknown);
  /** Longest a cell may be before it is cut with an ellipsis (default 60). */
  max?: number;
}

export function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

function cut(s: string, max: number): string {
  const flat = s.replace(/\s+/g, ' ');
  return flat.length > max ? `${flat.slice(0, Math.max(1, max - 1))}…` : flat;
}

/** Renders rows as an aligned table with a header line; an empty list prints `(none)`. */
export function table(rows: Array<Record<string, unknown>>, columns: Column[]): string {
  if (rows.length === 0) return '(none)\n';
  const cells = rows.map((row) =>
    columns.map((c) => cut(cell(typeof c.value === 'string' ? row[c.value] : c.value(row)), c.max ?? 60)),
  );
  const headers = columns.map((c) => c.header.toUpperCase());
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (parts: string[]) =>
    parts
      .map((p, i) => (i === parts.length - 1 ? p : p.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(headers), ...cells.map(line)].join('\n')}\n`;
}

/** Renders one object as `key: value` lines, keys aligned; nested values as compact JSON. */
export function record(obj: Record<string, unknown>, keys?: string[]): string {
  const entries = (keys ?? Object.keys(obj)).filter((k) => obj[k] !== undefined).map((k) => [k, cell(obj[k])] as const);
  if (entries.length === 0) return '';
  const width = Math.max(...entries.map(([k]) => k.length));
  return `${entries.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${v}`).join('\n')}\n`;
}

/** Quotes a value for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
