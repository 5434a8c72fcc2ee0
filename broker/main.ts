import { ConfigError, loadBrokerConfig } from './config.ts';
import { startBroker, type RunningBroker } from './server.ts';

/** Starts one broker from the environment; SIGTERM shuts it down gracefully (stop accepting, close clients, flush). */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<RunningBroker> {
  return startBroker(loadBrokerConfig(env));
}

const isEntry = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isEntry) {
  main().then(
    (running) => {
      const stop = (signal: string) => {
        process.stderr.write(`broker: ${signal}, shutting down\n`);
        running.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof ConfigError ? err.message : `broker failed to start: ${String((err as Error)?.stack ?? err)}`}\n`);
      process.exit(1);
    },
  );
}
