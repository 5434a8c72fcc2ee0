import { Writable } from 'node:stream';
import pino from 'pino';

/** A pino logger writing to memory: `lines` parsed, `raw` as written (tests look for what was logged). */
export function captureLogs(level = 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const text of String(chunk).split('\n')) {
        if (!text) continue;
        raw.push(text);
        lines.push(JSON.parse(text) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: pino({ level }, stream), lines, raw };
}
