import pino from 'pino';

/** Buffered log lines leave once this many bytes are pending, or at the next flush tick, whichever is first. */
const MIN_WRITE_BYTES = 4_096;
const FLUSH_EVERY_MS = 100;

/**
 * Where the processes log: stdout, buffered. pino's default writes every line with its own synchronous
 * `write` syscall; every CONNECT logs a line in both processes, and under a reconnect storm those writes were
 * a tenth of the sidecar's CPU profile and ~5 % of the broker's (each one also wakes whatever reads the pipe);
 * written asynchronously but unbuffered they were hardly fewer, since each write finished before the next line.
 * Lines now leave in writes of at least 4 KiB, and at most 100 ms after they were logged. pino flushes what is
 * pending when the process exits (also on an uncaught error); a SIGKILL loses at most the last 100 ms of lines.
 * One destination per process, shared by every logger made from it.
 */
let stdout: pino.DestinationStream | null = null;
export function logDestination(): pino.DestinationStream {
  if (stdout) return stdout;
  const destination = pino.destination({ dest: 1, sync: false, minLength: MIN_WRITE_BYTES });
  const timer = setInterval(() => {
    // `_len` is what sonic-boom holds unwritten: nothing pending, no empty write.
    if ((destination as unknown as { _len?: number })._len === 0) return;
    try {
      destination.flush();
    } catch {
      // Destroyed (the process is ending): nothing left to flush.
    }
  }, FLUSH_EVERY_MS);
  timer.unref();
  return (stdout = destination);
}
