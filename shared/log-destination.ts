import pino from 'pino';

/**
 * Where the processes log: stdout, written asynchronously. pino's default writes every line with its own
 * synchronous `write` syscall; every CONNECT logs a line in both processes, and under a reconnect storm those
 * writes were a tenth of the sidecar's CPU profile (each one also wakes whatever reads the pipe). Written
 * asynchronously, the lines logged while a write is in flight leave together in the next one; a quiet process
 * still writes each line at once (no minimum length, so nothing waits for a buffer to fill). pino flushes
 * what is pending when the process exits (also on an uncaught error); only a SIGKILL can lose the lines of
 * the last write in flight. One destination per process, shared by every logger made from it.
 */
let stdout: pino.DestinationStream | null = null;
export function logDestination(): pino.DestinationStream {
  return (stdout ??= pino.destination({ dest: 1, sync: false }));
}
