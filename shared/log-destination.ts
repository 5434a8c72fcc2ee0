import pino from 'pino';

/** Buffered log lines leave once this many characters are pending, or at the next flush tick, whichever is first. */
const MIN_WRITE_CHARS = 4_096;
const FLUSH_EVERY_MS = 100;

/**
 * Where the processes log: stdout, buffered. pino's default writes every line with its own synchronous
 * `write` syscall; every CONNECT logs a line in both processes, and under a reconnect storm those writes were
 * a tenth of the sidecar's CPU profile and ~5 % of the broker's (each one also wakes whatever reads the pipe);
 * written asynchronously but unbuffered they were hardly fewer, since each write finished before the next line.
 * Lines now leave in writes of at least 4 KiB, and at most 100 ms after they were logged.
 *
 * The lines are gathered here, in an array, and handed to pino's stream (sonic-boom: the asynchronous writes,
 * EAGAIN retries, the synchronous flush at exit) as one string per write. Handing it each line instead made it
 * append to one growing string and measure that string's UTF-8 length on every line, which flattens it: in a
 * reconnect storm's CPU profile that was two thirds of the broker's cost of logging a CONNECT.
 *
 * Pending lines are flushed synchronously when the process exits (also after an uncaught error, which exits
 * through the same event); a SIGKILL loses at most the last 100 ms of lines. One destination per process,
 * shared by every logger made from it.
 */
let stdout: pino.DestinationStream | null = null;
export function logDestination(): pino.DestinationStream {
  return (stdout ??= batchedDestination(pino.destination({ dest: 1, sync: false })));
}

/** The sonic-boom surface used here (pino's typings name it only as a DestinationStream). */
interface BoomStream extends pino.DestinationStream {
  flushSync(): void;
}

/** Exported for the tests: a destination that gathers lines and hands them to `out` in batches. */
export function batchedDestination(out: pino.DestinationStream): pino.DestinationStream {
  const boom = out as BoomStream;
  let pending: string[] = [];
  let pendingChars = 0;
  const handOver = (): boolean => {
    if (pending.length === 0) return false;
    const text = pending.join('');
    pending = [];
    pendingChars = 0;
    boom.write(text);
    return true;
  };
  // sonic-boom (at its default minLength of 0) starts writing what it is handed at once, or right after the
  // write in progress: handing the lines over is all a tick does.
  const timer = setInterval(handOver, FLUSH_EVERY_MS);
  timer.unref();
  process.on('exit', () => {
    if (!handOver()) return;
    try {
      boom.flushSync();
    } catch {
      // stdout is gone: nothing to write to.
    }
  });
  return {
    write(line: string): void {
      pending.push(line);
      pendingChars += line.length;
      if (pendingChars >= MIN_WRITE_CHARS) handOver();
    },
  };
}
