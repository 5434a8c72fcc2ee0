#!/usr/bin/env node
/**
 * Launcher for the ScopeGate admin CLI: runs cli/main.ts through tsx, from any working directory.
 *   npx scopegate tenant list
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../cli/main.ts', import.meta.url));
// An absolute URL for tsx's loader, resolved from this package, so the cwd does not matter.
const tsx = import.meta.resolve('tsx');

const child = spawn(process.execPath, ['--import', tsx, main, ...process.argv.slice(2)], { stdio: 'inherit' });

// Let the child handle Ctrl-C (audit tail --follow); the parent just waits for it.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    if (child.exitCode === null) child.kill(signal);
  });
}
child.on('error', (err) => {
  process.stderr.write(`scopegate: cannot start node: ${err.message}\n`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) process.exit(signal === 'SIGINT' ? 130 : 1);
  process.exit(code ?? 1);
});
