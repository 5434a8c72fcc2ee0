import { z } from 'zod';

/** Query strings of the HTTP API (pagination, cascade, explain, audit paging): HTTP's own inputs. */
export const queries = {
  listQuery: z.object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(200).optional(),
  }),
  deleteQuery: z.object({ cascade: z.enum(['true', 'false']).optional(), dryRun: z.enum(['true', 'false']).optional() }),
  explainQuery: z.object({ explain: z.enum(['true', 'false']).optional() }),
  auditQuery: z.object({
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    before: z.coerce.number().int().min(1).optional(),
    tenantId: z.string().max(120).optional(),
  }),
};

/** A batch body: 1 to 1,000 items of one input, all or nothing. */
export const batchOf = <T extends z.ZodType>(item: T) => z.array(item).min(1).max(1000);
