/**
 * In-process decision benchmarks, run as a child of bench/run.ts so its heap and JIT are its own. Prints one
 * JSON line. Modes (argv[2]):
 * - `casbin <ms>`: ScopeGate's evaluate() and casbin's enforce() (RBAC with domains, the equivalent policy) on
 *   the same requests;
 * - `scale <actors>`: evaluate() latency for a population of actors, each with a membership and a role in
 *   its access scope (run once with 1,000 and once with 100,000).
 */
import { newEnforcer, newModelFromString, StringAdapter } from 'casbin';
import { evaluate, type EvaluateRequest } from '../authz-sidecar/engine/evaluate.ts';
import { PolicyReplica } from '../authz-sidecar/model/replica.ts';
import { ensureBuiltins } from '../authz-sidecar/service/builtins.ts';
import { parseInput } from '../authz-sidecar/service/inputs.ts';
import { createAccessScope, createActor } from '../authz-sidecar/service/messaging.ts';
import { assignRole, createMembership, createPermission, createRole, createUser, linkRolePermission } from '../authz-sidecar/service/rbac.ts';
import { createProject, createTenant, createWorkspace } from '../authz-sidecar/service/scopes.ts';
import type { Tx } from '../authz-sidecar/service/tx.ts';
import { Writer } from '../authz-sidecar/service/writer.ts';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import type { PolicyStore } from '../authz-sidecar/store/policy-store.ts';

const ACTIONS = ['read', 'write', 'delete', 'deploy', 'publish'];
const TYPES = ['doc', 'environment', 'topic', 'invoice'];

export async function world(store: PolicyStore = new MemoryPolicyStore()) {
  const replica = new PolicyReplica(store);
  await replica.start();
  const writer = new Writer(store, replica);
  const write = async <T>(fn: (tx: Tx) => T) => (await writer.write({ principal: 'bench' }, 'bench', fn)).value;
  await write(ensureBuiltins);
  return { store, replica, write };
}

/** A deterministic pseudo-random sequence, so both engines get the very same requests. */
function rng(seed: number) {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
}

/** Calls per second of `fn`, run in chunks for about `ms` milliseconds. */
function rate(fn: () => void, ms: number): number {
  let calls = 0;
  const t0 = process.hrtime.bigint();
  const until = t0 + BigInt(ms) * 1_000_000n;
  let now = t0;
  while (now < until) {
    for (let i = 0; i < 100; i++) fn();
    calls += 100;
    now = process.hrtime.bigint();
  }
  return calls / (Number(now - t0) / 1e9);
}

async function casbinComparison(ms: number) {
  const { replica, write } = await world();
  const tenants = 10;
  const usersPerTenant = 100;
  const rolesPerTenant = 5;
  const random = rng(42);
  const policyLines: string[] = [];
  const users: Array<{ subjectId: string; tenantScope: string; tenantId: string }> = [];
  for (let t = 0; t < tenants; t++) {
    const tenant = await write((tx) => createTenant(tx, parseInput('tenantCreate', { name: `T${t}`, slug: `t${t}`, kind: 'standard' })));
    const roles: string[] = [];
    for (let r = 0; r < rolesPerTenant; r++) {
      // Ten distinct (action, resourceType) grants per role.
      const grants = [...new Map(Array.from({ length: 40 }, () => [ACTIONS[Math.floor(random() * ACTIONS.length)]!, TYPES[Math.floor(random() * TYPES.length)]!] as const).map((g) => [g.join(':'), g])).values()].slice(0, 10);
      const roleId = await write((tx) => {
        const role = createRole(tx, parseInput('roleCreate', { scopeId: tenant.scopeId, name: `role${r}` }));
        for (const [action, resourceType] of grants) {
          const perm = createPermission(tx, parseInput('permissionCreate', { scopeId: tenant.scopeId, action, resourceType, resourcePattern: '*', key: `${role.id}:${action}:${resourceType}` }));
          linkRolePermission(tx, parseInput('rolePermissionCreate', { roleId: role.id, permissionId: perm.id }));
        }
        return role.id;
      });
      for (const [action, resourceType] of grants) policyLines.push(`p, ${roleId}, ${tenant.id}, ${resourceType}, ${action}`);
      roles.push(roleId);
    }
    // Records become visible to later writes once committed: users first, then their memberships.
    const created = await write((tx) => Array.from({ length: usersPerTenant }, (_, u) => createUser(tx, parseInput('userCreate', { kindeId: `kp_${t}_${u}`, email: `u${u}@t${t}.example`, defaultTenantId: tenant.id }))));
    const memberships = await write((tx) => created.map((user) => createMembership(tx, parseInput('membershipCreate', { subjectId: user.subjectId, scopeId: tenant.scopeId }))));
    await write((tx) => {
      for (const [u, user] of created.entries()) {
        const m = memberships[u]!;
        const picked = new Set([roles[Math.floor(random() * roles.length)]!, roles[Math.floor(random() * roles.length)]!]);
        for (const roleId of picked) {
          assignRole(tx, parseInput('roleAssignmentCreate', { roleId, membershipId: m.id }));
          policyLines.push(`g, ${user.subjectId}, ${roleId}, ${tenant.id}`);
        }
        users.push({ subjectId: user.subjectId, tenantScope: tenant.scopeId, tenantId: tenant.id });
      }
    });
  }
  const model = newModelFromString(`
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
`);
  const enforcer = await newEnforcer(model, new StringAdapter(policyLines.join('\n')));

  // The same requests for both: a subject asks in its own tenant or (one in five) in another one.
  const requests = Array.from({ length: 2_000 }, () => {
    const u = users[Math.floor(random() * users.length)]!;
    const other = users[Math.floor(random() * users.length)]!;
    const target = random() < 0.2 ? other : u;
    return { u, target, action: ACTIONS[Math.floor(random() * ACTIONS.length)]!, resourceType: TYPES[Math.floor(random() * TYPES.length)]! };
  });
  const sgRequests: EvaluateRequest[] = requests.map((q) => ({ subjectId: q.u.subjectId, subjectType: 'user', scopeId: q.target.tenantScope, action: q.action, resourceType: q.resourceType }));
  const cbRequests = requests.map((q) => [q.u.subjectId, q.target.tenantId, q.resourceType, q.action] as const);

  // Both engines must agree on every decision, or the comparison means nothing.
  let disagreements = 0;
  let allowed = 0;
  for (let i = 0; i < requests.length; i++) {
    const a = evaluate(replica.model, sgRequests[i]!).decision === 'ALLOWED';
    const b = enforcer.enforceSync(...cbRequests[i]!);
    if (a !== b) disagreements++;
    if (a) allowed++;
  }
  let i = 0;
  const m = replica.model;
  // Warm both up, then time them alternately (each for `ms` per round; the best round counts).
  rate(() => evaluate(m, sgRequests[i++ % sgRequests.length]!), 300);
  rate(() => enforcer.enforceSync(...cbRequests[i++ % cbRequests.length]!), 300);
  const sgRates: number[] = [];
  const cbRates: number[] = [];
  for (let round = 0; round < 3; round++) {
    sgRates.push(rate(() => evaluate(m, sgRequests[i++ % sgRequests.length]!), ms));
    cbRates.push(rate(() => enforcer.enforceSync(...cbRequests[i++ % cbRequests.length]!), ms));
  }
  return {
    scopegatePerSecond: Math.max(...sgRates),
    casbinPerSecond: Math.max(...cbRates),
    msPerRound: ms,
    policy: { tenants, users: users.length, rolesPerTenant, permissionsPerRole: 10, casbinPolicyLines: policyLines.length },
    agreement: { requests: requests.length, disagreements, allowed },
  };
}

async function scale(actors: number) {
  const t0 = Date.now();
  const { replica, subjects } = await buildActorWorld(actors);
  const buildSeconds = (Date.now() - t0) / 1000;
  const random = rng(7);
  const requests: EvaluateRequest[] = Array.from({ length: 20_000 }, () => {
    const s = subjects[Math.floor(random() * subjects.length)]!;
    return { subjectId: s.subjectId, subjectType: 'actor', scopeId: s.scopeId, action: random() < 0.5 ? 'publish' : 'deploy', resourceType: 'topic', resourceId: 'app/x' };
  });
  const m = replica.model;
  let i = 0;
  rate(() => evaluate(m, requests[i++ % requests.length]!), 500);
  const samples: number[] = [];
  for (let k = 0; k < 50_000; k++) {
    const t = process.hrtime.bigint();
    evaluate(m, requests[k % requests.length]!);
    samples.push(Number(process.hrtime.bigint() - t) / 1000);
  }
  samples.sort((a, b) => a - b);
  return {
    actors,
    buildSeconds,
    meanUs: samples.reduce((a, b) => a + b, 0) / samples.length,
    p50Us: samples[Math.floor(samples.length * 0.5)]!,
    p99Us: samples[Math.floor(samples.length * 0.99)]!,
    heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20,
  };
}

/**
 * A project with 50 access scopes and `actors` actors spread over them, each with a membership in its scope
 * and a role (defined at the project) allowing publish/subscribe on topics and reading docs.
 */
export async function buildActorWorld(actors: number, onto?: PolicyStore) {
  const { store, replica, write } = await world(onto);
  const tenant = await write((tx) => createTenant(tx, parseInput('tenantCreate', { name: 'Scale', slug: 'scale', kind: 'enterprise' })));
  const ws = await write((tx) => createWorkspace(tx, parseInput('workspaceCreate', { tenantId: tenant.id, name: 'W' })));
  const project = await write((tx) => createProject(tx, parseInput('projectCreate', { tenantId: tenant.id, workspaceId: ws.id, name: 'P' })));
  const scopes = await write((tx) => Array.from({ length: 50 }, (_, k) => createAccessScope(tx, project, parseInput('accessScopeCreate', { slug: `s${k}`, name: `S${k}` }))));
  const roleId = await write((tx) => {
    const role = createRole(tx, parseInput('roleCreate', { scopeId: project.scopeId, name: 'device' }));
    for (const [action, resourceType] of [['publish', 'topic'], ['subscribe', 'topic'], ['read', 'doc']] as const) {
      const perm = createPermission(tx, parseInput('permissionCreate', { scopeId: project.scopeId, action, resourceType, resourcePattern: '*' }));
      linkRolePermission(tx, parseInput('rolePermissionCreate', { roleId: role.id, permissionId: perm.id }));
    }
    return role.id;
  });
  const subjects: Array<{ subjectId: string; scopeId: string }> = [];
  for (let done = 0; done < actors; ) {
    const batch = Math.min(5_000, actors - done);
    const created = await write((tx) =>
      Array.from({ length: batch }, (_, k) => {
        const scope = scopes[(done + k) % scopes.length]!;
        const actor = createActor(tx, project, parseInput('actorCreate', { name: `a${done + k}`, kind: 'device', accessScopeId: scope.id }));
        return { subjectId: actor.subjectId, scopeId: scope.id };
      }),
    );
    // Records become visible to later writes once committed: actors first, then memberships, then roles.
    const memberships = await write((tx) => created.map((a) => createMembership(tx, parseInput('membershipCreate', { subjectId: a.subjectId, scopeId: a.scopeId }))));
    await write((tx) => memberships.forEach((m) => assignRole(tx, parseInput('roleAssignmentCreate', { roleId, membershipId: m.id }))));
    subjects.push(...created);
    done += batch;
  }
  return { store, replica, subjects };
}

const mode = process.argv[2];
if (mode === 'casbin' || mode === 'scale') {
  const result = mode === 'casbin' ? await casbinComparison(Number(process.argv[3] ?? 1_000)) : await scale(Number(process.argv[3] ?? 1_000));
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}
