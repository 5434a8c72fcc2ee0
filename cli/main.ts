/**
 * `scopegate`: the admin CLI over the typed client, for what admins do by hand (like OpenFGA's `fga` or
 * `mosquitto_ctrl`). Run it through bin/scopegate.mjs (`npx scopegate …`) or `tsx cli/main.ts …`.
 *
 *   scopegate tenant create --name 'Acme Corp' --slug acme
 *   scopegate evaluate --subject user_… --scope scope_… --action read --resource-type doc --explain
 *
 * Body fields are sent as given: a field the schema needs but that was not passed is reported by the
 * server (400 VALIDATION_FAILED), so the CLI never disagrees with the API about what is valid. Only what
 * the CLI needs to build the URL (ids in the path) is checked here.
 *
 * Exit codes: 0 success, 1 API or network error, 2 usage error.
 *
 * Layout: `framework/` (the command model and flag readers, help texts, output, commands generic over a
 * resource, the runner), `commands/` (one module per command group), and this entry point. Only this file
 * touches `process`: everything else gets its environment and output through the injected RunIO.
 */
import { pathToFileURL } from 'node:url';
import { auditCommands } from './commands/audit.ts';
import { delegationsCommands } from './commands/delegations.ts';
import { evaluateCommands } from './commands/evaluate.ts';
import { keysAndDemoCommands } from './commands/keys-and-demo.ts';
import { limitsCommands } from './commands/limits.ts';
import { messagingCommands } from './commands/messaging.ts';
import { mqttCommands } from './commands/mqtt.ts';
import { rbacCommands } from './commands/rbac.ts';
import { scopeTreeCommands } from './commands/scope-tree.ts';
import { sessionsCommands } from './commands/sessions.ts';
import type { Command } from './framework/command.ts';
import { runCli, type RunIO } from './framework/run.ts';

export type { RunIO } from './framework/run.ts';

/** Every command, in the order help lists them. */
export const commands: readonly Command[] = [...scopeTreeCommands, ...messagingCommands, ...delegationsCommands, ...rbacCommands, ...evaluateCommands, ...limitsCommands, ...auditCommands, ...mqttCommands, ...sessionsCommands, ...keysAndDemoCommands];

/** Runs one CLI invocation; resolves to the exit code. (`audit tail --follow` only returns on error.) */
export function run(argv: string[], io: RunIO): Promise<number> {
  return runCli(commands, argv, io);
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invokedDirectly) {
  // Piping into `head` closes stdout early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  process.exitCode = await run(process.argv.slice(2), {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
  });
}
