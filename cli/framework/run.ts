/**
 * Runs one CLI invocation over a list of commands: finds the command in argv, parses its flags, builds the
 * client, runs it and turns errors into messages and exit codes (0 ok, 1 API or network error, 2 usage).
 * Everything from outside — output streams, environment, fetch — is injected through RunIO.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ScopeGateApiError, ScopeGateClient } from '../../client/index.ts';
import { cell } from '../format.ts';
import { DEFAULT_URL, GLOBAL_OPTIONS, UsageError, type Command, type Ctx, type Values } from './command.ts';
import { commandHelp, groupHelp, groupsOf, mainHelp, shortUsage } from './help.ts';

const REQUEST_TIMEOUT_MS = 30_000;

export interface RunIO {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string | undefined>;
  fetch?: typeof fetch;
}

const VALUE_GLOBALS = new Set(['--url', '--token']);

/** Runs one CLI invocation; resolves to the exit code. (`audit tail --follow` only returns on error.) */
export async function runCli(commands: readonly Command[], argv: string[], io: RunIO): Promise<number> {
  const groups = groupsOf(commands);
  // The command: the first word that is not an option (skipping the values of --url/--token), and the word
  // right after it when that names a subcommand.
  const words: Array<{ word: string; index: number }> = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('-')) {
      if (VALUE_GLOBALS.has(a)) i++;
      continue;
    }
    words.push({ word: a, index: i });
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('-')) words.push({ word: next, index: i + 1 });
    break;
  }
  const wantsHelp = argv.some((a) => a === '--help' || a === '-h');
  const fail = (err: UsageError): number => {
    io.stderr(`error: ${err.message}\n${shortUsage(commands, err)}`);
    return 2;
  };

  const [w1, w2] = words;
  if (!w1 || w1.word === 'help') {
    const topic = w1 ? w2?.word : undefined;
    if (topic && groups.includes(topic)) {
      io.stdout(groupHelp(commands, topic));
      return 0;
    }
    if (wantsHelp || w1) {
      io.stdout(mainHelp(commands));
      return 0;
    }
    if (argv.includes('--version')) {
      io.stdout(`${version()}\n`);
      return 0;
    }
    io.stderr(`error: missing command\n${shortUsage(commands, new UsageError(''))}`);
    return 2;
  }
  const command =
    (w2 && commands.find((c) => c.name === `${w1.word} ${w2.word}`)) ?? commands.find((c) => c.name === w1.word);
  if (!command) {
    if (groups.includes(w1.word)) {
      if (wantsHelp && (!w2 || w2.word.startsWith('-'))) {
        io.stdout(groupHelp(commands, w1.word));
        return 0;
      }
      return fail(new UsageError(w2 ? `unknown command '${w1.word} ${w2.word}'` : `'${w1.word}' needs a subcommand`, undefined, w1.word));
    }
    return fail(new UsageError(`unknown command '${w1.word}'`));
  }
  if (wantsHelp) {
    io.stdout(commandHelp(command));
    return 0;
  }
  const used = command.name.includes(' ') ? [w1.index, w2!.index] : [w1.index];
  const rest = argv.filter((_, i) => !used.includes(i));

  let values: Values;
  let positionals: string[];
  try {
    const options = Object.fromEntries(
      Object.entries({ ...command.options, ...GLOBAL_OPTIONS }).map(([n, o]) => [n, { type: o.type, ...(o.short ? { short: o.short } : {}) }]),
    ) as Record<string, { type: 'string' | 'boolean'; short?: string }>;
    const parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: true });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    return fail(new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ''), command));
  }
  if (positionals.length > (command.maxPositionals ?? 0)) {
    return fail(new UsageError(`unexpected argument '${positionals[command.maxPositionals ?? 0]}'`, command));
  }

  const url = (typeof values.url === 'string' ? values.url : undefined) ?? io.env.SCOPEGATE_URL ?? DEFAULT_URL;
  const token = (typeof values.token === 'string' ? values.token : undefined) ?? io.env.AUTHZ_ADMIN_TOKEN ?? '';
  if (!/^https?:\/\//.test(url)) return fail(new UsageError(`--url must start with http:// or https:// (got '${url}')`, command));
  const baseFetch = io.fetch ?? fetch;
  const client = new ScopeGateClient({
    baseUrl: url,
    token,
    // Name the cause of network failures (ECONNREFUSED, ENOTFOUND, timeout) instead of a bare "fetch failed".
    fetch: async (input, init) => {
      try {
        return await baseFetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        if (err.name === 'TimeoutError') throw new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
        throw new Error(err.cause?.message ?? err.cause?.code ?? err.message);
      }
    },
  });
  const ctx: Ctx = { client, url, token, json: values.json === true, values, positionals, command, env: io.env, out: io.stdout, warn: io.stderr };
  try {
    await command.run(ctx);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) return fail(e);
    if (e instanceof ScopeGateApiError) {
      if (e.code === 'NETWORK_ERROR') {
        io.stderr(`error: cannot reach the ScopeGate sidecar at ${url}: ${stripPrefix(e.message, `Cannot reach ${url.replace(/\/+$/, '')}: `)}\nIs it running? Set the address with --url or SCOPEGATE_URL.\n`);
        return 1;
      }
      let s = `error: ${e.code}: ${e.message}\n`;
      for (const d of e.details) {
        const extra = Object.entries(d).filter(([k]) => k !== 'path' && k !== 'message');
        s += `  - ${d.path ? `${d.path}: ` : ''}${d.message}${extra.length ? ` (${extra.map(([k, v]) => `${k}: ${cell(v)}`).join(', ')})` : ''}\n`;
      }
      if (e.code === 'STILL_REFERENCED' && 'cascade' in command.options) s += 'Pass --cascade to delete the dependents too.\n';
      if (e.code === 'UNAUTHENTICATED' && !token) s += 'No admin token given: pass --token or set AUTHZ_ADMIN_TOKEN.\n';
      io.stderr(s);
      return 1;
    }
    io.stderr(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

function stripPrefix(s: string, prefix: string): string {
  return s.startsWith(prefix) ? s.slice(prefix.length) : s;
}

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
