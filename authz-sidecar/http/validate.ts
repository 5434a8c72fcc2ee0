import type { z } from 'zod';
import { ScopeGateError, truncate } from '../../shared/errors.ts';

/**
 * Validates one input (body, query or params) against its schema; every problem is reported together as
 * 400 VALIDATION_FAILED with one detail per issue, pointing at the field.
 */
export function parse<T extends z.ZodType>(schema: T, value: unknown, where: 'body' | 'query' | 'params'): z.infer<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const details = result.error.issues.slice(0, 50).map((issue) => ({
    path: [where, ...issue.path.map(String)].join('.'),
    message: truncate(issue.message, 200),
    code: issue.code,
  }));
  throw new ScopeGateError('VALIDATION_FAILED', `Invalid ${where}: ${details[0]?.path ?? where}: ${details[0]?.message ?? 'invalid'}`, details);
}
