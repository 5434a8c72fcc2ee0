import { runIfEntry } from '../shared/process-entry.ts';
import { loadBrokerConfig } from './config.ts';
import { startBroker, type RunningBroker } from './server.ts';

/** Starts one broker from the environment; SIGTERM shuts it down gracefully (stop accepting, close clients, flush). */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<RunningBroker> {
  return startBroker(loadBrokerConfig(env));
}

runIfEntry(import.meta.url, 'broker', main);
