import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * Runs a real process that logs through `shared/log-destination.ts` and ends as `ending` says; resolves with the
 * JSON lines it printed on stdout (a pipe, as under `npm start` or a supervisor).
 */
function logThenEnd(lines: number, ending: 'exit' | 'throw' | 'idle'): Promise<Array<Record<string, unknown>>> {
  const script = `
    import pino from 'pino';
    import { logDestination } from './shared/log-destination.ts';
    const logger = pino({ base: { process: 'test' } }, logDestination());
    for (let i = 0; i < ${lines}; i++) logger.info({ i, text: 'é'.repeat(i % 7) }, 'line');
    ${ending === 'exit' ? 'process.exit(0);' : ending === 'throw' ? "setTimeout(() => { throw new Error('boom'); }, 1);" : "setTimeout(() => {}, 300);"}
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.on('error', reject);
    child.on('close', () => {
      try {
        resolve(out.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as Record<string, unknown>));
      } catch (err) {
        reject(err);
      }
    });
  });
}

describe('log destination: lines are batched on stdout and none is lost', () => {
  it('every line arrives whole and in order, also when the process exits at once after logging', async () => {
    // 5,000 lines are many 4 KiB batches and a partial last one, still pending at process.exit.
    const printed = await logThenEnd(5_000, 'exit');
    expect(printed.map((l) => l.i)).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(printed[4_999]).toMatchObject({ msg: 'line', process: 'test', text: 'é'.repeat(4_999 % 7) });
  }, 60_000);

  it('a few lines below the batch size reach stdout at the flush tick while the process lives on', async () => {
    const printed = await logThenEnd(3, 'idle');
    expect(printed.map((l) => l.i)).toEqual([0, 1, 2]);
  }, 60_000);

  it('lines logged before an uncaught error are not lost', async () => {
    const printed = await logThenEnd(50, 'throw');
    expect(printed.map((l) => l.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  }, 60_000);
});
