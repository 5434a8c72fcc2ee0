import { ConfigError } from './config.ts';

/**
 * Runs a process's `main` when its module is the entry point: SIGTERM/SIGINT close it gracefully (exit 0, or
 * 1 if closing fails); a configuration problem is printed as its plain message, anything else with its stack.
 */
export function runIfEntry(moduleUrl: string, name: string, main: () => Promise<{ close(): Promise<void> }>): void {
  const isEntry = process.argv[1] && moduleUrl === new URL(`file://${process.argv[1]}`).href;
  if (!isEntry) return;
  main().then(
    (running) => {
      const stop = (signal: string) => {
        process.stderr.write(`${name}: ${signal}, shutting down\n`);
        running.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof ConfigError ? err.message : `${name} failed to start: ${String((err as Error)?.stack ?? err)}`}\n`);
      process.exit(1);
    },
  );
}
