/**
 * What both processes' config loaders share: one error that reports every problem together, and the
 * parsing of integers and log levels from the environment.
 */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** `LOG_LEVEL` (default info); a problem is noted when it is not a pino level. */
export function logLevelFrom(value: string | undefined, problems: string[]): string {
  const level = value?.trim() || 'info';
  if (!LOG_LEVELS.includes(level)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

/** An integer in [min, max] from the environment, `fallback` when unset; a problem is noted otherwise. */
export function intFrom(value: string | undefined, fallback: number, name: string, min: number, max: number, problems: string[], what = `an integer ${min}–${max}`): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    problems.push(`${name} must be ${what} (got '${value.slice(0, 20)}')`);
    return fallback;
  }
  return n;
}

export function portFrom(value: string | undefined, fallback: number, name: string, problems: string[]): number {
  return intFrom(value, fallback, name, 0, 65535, problems, 'a port number 0–65535');
}
