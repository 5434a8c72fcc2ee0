import { z } from 'zod';

/** Query strings of the HTTP API (pagination, cascade, explain, audit paging and filters): HTTP's own inputs. */
export const queries = {
  listQuery: z.object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(200).optional(),
  }),
  deleteQuery: z.object({ cascade: z.enum(['true', 'false']).optional(), dryRun: z.enum(['true', 'false']).optional() }),
  explainQuery: z.object({ explain: z.enum(['true', 'false']).optional() }),
  auditQuery: z
    .object({
      limit: z.coerce.number().int().min(1).max(1000).default(100),
      before: z.coerce.number().int().min(1).optional(),
      tenantId: z.string().max(120).optional(),
      /** Who: the principal that wrote, exactly ('admin' for the root token, or an API key's id). */
      principal: z.string().min(1).max(120).regex(/^[A-Za-z0-9_-]+$/, "must be 'admin' or an API key id").describe("Who: only entries written by this principal ('admin', or an API key id)").optional(),
      /** What: an action ('access_scope.move'), or every action starting with a prefix ('access_scope.*'). */
      action: z.string().min(1).max(100).regex(/^[a-z0-9_.]+\*?$/, "must be an action like 'actor.update', or a prefix ending in '*' like 'actor.*'").describe("What: only this action (e.g. access_scope.move), or every action starting with a prefix ending in '*' (e.g. actor.*)").optional(),
      /** When: entries written at or after this instant (ISO 8601 with a time zone, e.g. 2026-12-01T08:00:00Z). */
      since: z.iso.datetime({ offset: true }).describe('When: only entries written at or after this instant (ISO 8601 with Z or an offset)').optional(),
      /** When: entries written at or before this instant. */
      until: z.iso.datetime({ offset: true }).describe('When: only entries written at or before this instant').optional(),
    })
    .refine((q) => q.since === undefined || q.until === undefined || Date.parse(q.since) <= Date.parse(q.until), { message: 'since must not be after until', path: ['since'] }),
};

/** A batch body: 1 to 1,000 items of one input, all or nothing. */
export const batchOf = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(1000);
