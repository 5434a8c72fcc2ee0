/**
 * The CLI's command model: what a command declares (name, options, positionals) and what it is given when it
 * runs (a context with the parsed flags, the client, the injected environment and output), plus the small
 * readers of flags that every command uses.
 */
import type { ScopeGateClient } from '../../client/index.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface OptSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Placeholder in usage, e.g. `<id>`. */
  value?: string;
  help: string;
  /** The API needs it (shown without brackets in usage; the server reports it when missing). */
  required?: boolean;
}

export type Values = Record<string, string | boolean | undefined>;

export interface Ctx {
  client: ScopeGateClient;
  url: string;
  token: string;
  json: boolean;
  values: Values;
  positionals: string[];
  command: Command;
  /** The environment, injected (never process.env directly): defaults for --org and --project. */
  env: Readonly<Record<string, string | undefined>>;
  out(text: string): void;
  /** Warnings that do not end the command (written to stderr). */
  warn(text: string): void;
}

export interface Command {
  /** Words, e.g. `tenant create`. */
  name: string;
  summary: string;
  /** Positional arguments in usage, e.g. `<id>`. */
  args?: string;
  /** How many positionals are allowed (default 0). */
  maxPositionals?: number;
  options: Record<string, OptSpec>;
  /** Does not talk to the API (no client needed). */
  offline?: boolean;
  run(ctx: Ctx): Promise<void>;
}

export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: Command,
    readonly group?: string,
  ) {
    super(message);
  }
}

export const GLOBAL_OPTIONS: Record<string, OptSpec> = {
  url: { type: 'string', value: '<url>', help: `sidecar base URL (env SCOPEGATE_URL, default ${DEFAULT_URL})` },
  token: { type: 'string', value: '<token>', help: 'admin bearer token (env AUTHZ_ADMIN_TOKEN)' },
  json: { type: 'boolean', help: 'print the raw JSON response' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
};

// Reading flags

export function str(ctx: Ctx, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(ctx: Ctx, name: string): boolean {
  return ctx.values[name] === true;
}

/** A value the CLI itself needs (an id in the URL): missing is a usage error. */
export function need(ctx: Ctx, name: string): string {
  const v = str(ctx, name);
  if (v === undefined || v === '') throw new UsageError(`missing required flag --${name}`, ctx.command);
  return v;
}

/** The id argument: `<id>` positional, or the named flag. */
export function idArg(ctx: Ctx, flagName?: string): string {
  const v = ctx.positionals[0] ?? (flagName ? str(ctx, flagName) : undefined);
  if (!v) throw new UsageError(flagName ? `missing <id> (or --${flagName})` : 'missing <id>', ctx.command);
  return v;
}

/** Integers become numbers, `none`/`null` becomes null; anything else is sent as is, for the server to judge. */
export function num(v: string | undefined, nullable = false): number | string | null | undefined {
  if (v === undefined) return undefined;
  if (nullable && (v === 'none' || v === 'null')) return null;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}

export function nullable(v: string | undefined): string | null | undefined {
  return v === 'none' || v === 'null' ? null : v;
}

/** The organization's project named by --org/--project (or SCOPEGATE_ORG/SCOPEGATE_PROJECT). */
export function org(ctx: Ctx) {
  const orgId = str(ctx, 'org') ?? ctx.env.SCOPEGATE_ORG;
  const projectId = str(ctx, 'project') ?? ctx.env.SCOPEGATE_PROJECT;
  if (!orgId) throw new UsageError('missing required flag --org (or env SCOPEGATE_ORG)', ctx.command);
  if (!projectId) throw new UsageError('missing required flag --project (or env SCOPEGATE_PROJECT)', ctx.command);
  return ctx.client.project(orgId, projectId);
}


/** Options several commands share. */
export const OPT = {
  org: { type: 'string', value: '<tenant-id>', help: 'organization (tenant) id (or env SCOPEGATE_ORG)', required: true },
  project: { type: 'string', value: '<project-id>', help: 'project id (or env SCOPEGATE_PROJECT)', required: true },
  limit: { type: 'string', value: '<n>', help: 'page size (default 100)' },
  cursor: { type: 'string', value: '<cursor>', help: 'continue after this cursor' },
  all: { type: 'boolean', help: 'follow cursors and list everything' },
  cascade: { type: 'boolean', help: 'also delete everything that depends on it' },
  name: { type: 'string', value: '<text>', help: 'display name', required: true },
  slug: { type: 'string', value: '<slug>', help: 'lowercase letters, digits, dashes' },
  externalId: { type: 'string', value: '<id>', help: 'your own id for it' },
  mqttHost: { type: 'string', value: '<host>', help: 'broker host for the printed commands (default 127.0.0.1)' },
  mqttPort: { type: 'string', value: '<port>', help: 'broker port for the printed commands (default 1883)' },
} satisfies Record<string, OptSpec>;

/** The actor as a flag, for commands that also take it as the `<actor-id>` argument. */
export const ACTOR_FLAG: OptSpec = { type: 'string', value: '<actor-id>', help: 'the actor (instead of the <actor-id> argument)' };

export const projectOpts = { org: OPT.org, project: OPT.project } satisfies Record<string, OptSpec>;

/**
 * A request body as the user typed it: the field names are the schema's (a typo fails to compile), the
 * values are sent as given — missing, or a string where the schema wants a number — because the server
 * validates and reports every problem (400 VALIDATION_FAILED), so the CLI never disagrees with the API.
 */
export type Draft<T> = { [K in keyof T]?: (T[K] extends object ? Draft<T[K]> : never) | T[K] | string | null };

/** Sends a draft where the client expects the validated body type: the server is the judge (see Draft). */
export function asSent<T>(body: Draft<T>): T {
  return body as T;
}
