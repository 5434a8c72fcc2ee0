import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/** The CLI launcher as `npx scopegate` runs it. */
export const CLI_BIN = fileURLToPath(new URL('../../bin/scopegate.mjs', import.meta.url));
const run = promisify(execFile);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment the CLI runs with in tests: the caller's, pointed at `url`, without a default org/project. */
export function cliEnv(url: string, token: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, SCOPEGATE_URL: url, AUTHZ_ADMIN_TOKEN: token, ...extra };
  delete env.SCOPEGATE_ORG;
  delete env.SCOPEGATE_PROJECT;
  return env;
}

/**
 * Runs the CLI as a new process from a directory outside the repo, against `url` with `token` (and extra
 * environment), without SCOPEGATE_ORG/SCOPEGATE_PROJECT from the caller's environment. Never rejects for a
 * non-zero exit: the code is what the tests look at.
 */
export async function runCli(args: string[], o: { url: string; token: string; env?: Record<string, string>; timeoutMs?: number }): Promise<CliResult> {
  const env = cliEnv(o.url, o.token, o.env);
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_BIN, ...args], { cwd: tmpdir(), env, timeout: o.timeoutMs ?? 20_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof err.code !== 'number') throw e;
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
