import type { Request, Response, Router } from 'express';
import type { z } from 'zod';
import { ScopeGateError } from '../../shared/errors.ts';
import type { RecordKind, RecordOf, StoredRecord } from '../model/records.ts';
import { canSee, writeGuard, type Principal } from '../access/principal.ts';
import { present } from '../http/present.ts';
import * as responses from '../http/responses.ts';
import { batchOf, queries } from '../http/queries.ts';
import { parse } from '../http/validate.ts';
import { deleteRecord } from '../service/delete.ts';
import type { Tx } from '../service/tx.ts';
import type { SidecarContext } from './context.ts';

/**
 * One resource of the admin API, declared once: create (single or batch), read one, list (paginated, with
 * equality filters), patch and delete (409 while referenced unless `?cascade=true`). Every route it mounts is
 * recorded in the route registry for the OpenAPI document.
 */
/** A create handler and the schema of its input: the handler's input type is the schema's output. */
export interface CreateOperation<S extends z.ZodType> {
  schema: S;
  run: (tx: Tx, input: z.output<S>) => StoredRecord;
}

/** A patch handler for records of kind K and the schema of its input. */
export interface PatchOperation<K extends RecordKind, S extends z.ZodType> {
  schema: S;
  run: (tx: Tx, record: RecordOf<K>, input: z.output<S>) => StoredRecord;
}

/**
 * The schemas are type parameters, inferred from each `schema` field, so every `run` is checked against the
 * schema it is paired with; the service's inputs are branded per schema (service/inputs.ts), so a handler
 * paired with another schema fails to compile even when the two shapes agree.
 */
export interface ResourceSpec<K extends RecordKind, C extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType, P extends z.ZodType = z.ZodType> {
  kind: K;
  /** e.g. '/tenants' */
  path: string;
  /** Name in audit actions and OpenAPI tags, e.g. 'tenant'. */
  name: string;
  create?: CreateOperation<C>;
  /** POST `${path}/batch` with an array; all-or-nothing. */
  batch?: CreateOperation<B>;
  patch?: PatchOperation<K, P>;
  /** Query parameters that filter lists by equality on the record field of the same name. */
  filters?: string[];
  deletable?: boolean;
}

export function principalOf(res: Response): Principal {
  return res.locals.principal as Principal;
}

export function writeContext(req: Request, res: Response) {
  const principal = principalOf(res);
  return { principal: principal.id, requestId: String(res.locals.requestId ?? ''), guard: writeGuard(principal) };
}

export function mountResource<K extends RecordKind, C extends z.ZodType, B extends z.ZodType, P extends z.ZodType>(router: Router, ctx: SidecarContext, spec: ResourceSpec<K, C, B, P>): void {
  const { kind, path, name } = spec;

  if (spec.create) {
    const { schema, run } = spec.create;
    ctx.routes.add({ method: 'post', path, tag: name, summary: `Create a ${name}`, body: schema, status: 201, response: responses.oneOf(kind) });
    router.post(path, async (req, res) => {
      const input = parse(schema, req.body, 'body');
      const { value, revision } = await ctx.writer.write(writeContext(req, res), `${name}.create`, (tx) => run(tx, input));
      res.status(201).json({ ...present(value), revision });
    });
  }

  if (spec.batch) {
    const { schema, run } = spec.batch;
    const body = batchOf(schema);
    ctx.routes.add({ method: 'post', path: `${path}/batch`, tag: name, summary: `Create ${name}s, all or nothing`, body, status: 201, response: responses.batchOf(kind) });
    router.post(`${path}/batch`, async (req, res) => {
      const items = parse(body, req.body, 'body');
      const { value, revision } = await ctx.writer.write(writeContext(req, res), `${name}.batch_create`, (tx) =>
        items.map((item, index) => {
          try {
            return run(tx, item);
          } catch (e) {
            if (e instanceof ScopeGateError) {
              throw new ScopeGateError(e.code, `Item ${index}: ${e.message}`, e.details.map((d) => ({ ...d, path: `body.${index}${d.path ? `.${d.path}` : ''}` })));
            }
            throw e;
          }
        }),
      );
      res.status(201).json({ data: value.map(present), revision });
    });
  }

  ctx.routes.add({ method: 'get', path, tag: name, summary: `List ${name}s`, query: queries.listQuery, filters: spec.filters ?? [], response: responses.pageOf(kind) });
  router.get(path, (req, res) => {
    const query = parse(queries.listQuery, req.query, 'query');
    const principal = principalOf(res);
    const filters = (spec.filters ?? []).flatMap((f) => {
      const v = req.query[f];
      return typeof v === 'string' ? [[f, v] as const] : [];
    });
    const items: StoredRecord[] = [];
    for (const r of ctx.replica.model.all(kind)) {
      const fields = r as unknown as Record<string, unknown>;
      if (filters.some(([f, v]) => fields[f] !== v)) continue;
      if (!canSee(ctx.replica.model, principal, r)) continue;
      items.push(r);
    }
    items.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const start = query.cursor ? items.findIndex((r) => r.id > query.cursor!) : 0;
    const page = start < 0 ? [] : items.slice(start, start + query.limit);
    const last = page[page.length - 1];
    const hasMore = start >= 0 && start + query.limit < items.length;
    res.json({ data: page.map(present), nextCursor: hasMore && last ? last.id : null, revision: ctx.replica.seq });
  });

  ctx.routes.add({ method: 'get', path: `${path}/{id}`, tag: name, summary: `Read one ${name}`, response: responses.oneOf(kind) });
  router.get(`${path}/:id`, (req, res) => {
    const r = findVisible(ctx, res, kind, String(req.params.id), name);
    res.json({ ...present(r), revision: ctx.replica.seq });
  });

  if (spec.patch) {
    const { schema, run } = spec.patch;
    ctx.routes.add({ method: 'patch', path: `${path}/{id}`, tag: name, summary: `Change a ${name}`, body: schema, response: responses.oneOf(kind) });
    router.patch(`${path}/:id`, async (req, res) => {
      const input = parse(schema, req.body, 'body');
      findVisible(ctx, res, kind, String(req.params.id), name);
      const { value, revision } = await ctx.writer.write(writeContext(req, res), `${name}.update`, (tx) =>
        run(tx, tx.must(kind, String(req.params.id)), input),
      );
      res.json({ ...present(value), revision });
    });
  }

  if (spec.deletable !== false) {
    ctx.routes.add({ method: 'delete', path: `${path}/{id}`, tag: name, summary: `Delete a ${name} (?cascade=true to delete its dependents; ?dryRun=true lists what would be deleted)`, query: queries.deleteQuery, response: responses.deletedResponse });
    router.delete(`${path}/:id`, async (req, res) => {
      const query = parse(queries.deleteQuery, req.query, 'query');
      findVisible(ctx, res, kind, String(req.params.id), name);
      const build = (tx: Tx) => deleteRecord(tx, tx.must(kind, String(req.params.id)), query.cascade === 'true');
      if (query.dryRun === 'true') {
        // What the delete would remove (a cascade's whole list), checked like the real one, nothing changed.
        const value = ctx.writer.preview(writeContext(req, res), build);
        res.json({ deleted: value.map((r) => ({ kind: r.kind, id: r.id })), dryRun: true, revision: ctx.replica.seq });
        return;
      }
      const { value, revision } = await ctx.writer.write(writeContext(req, res), `${name}.delete`, build);
      res.json({ deleted: value.map((r) => ({ kind: r.kind, id: r.id })), revision });
    });
  }
}

/** A record the caller may see: 404 when it does not exist, 403 when it lies outside an API key's subtree (SPEC §3). */
export function findVisible<K extends RecordKind>(ctx: SidecarContext, res: Response, kind: K, id: string, name: string): RecordOf<K> {
  const r = ctx.replica.model.get(kind, id);
  if (!r) throw new ScopeGateError('NOT_FOUND', `${name} '${id.slice(0, 80)}' does not exist.`);
  if (!canSee(ctx.replica.model, principalOf(res), r)) throw new ScopeGateError('FORBIDDEN', `This API key may not access ${name} '${id.slice(0, 80)}'.`);
  return r;
}
