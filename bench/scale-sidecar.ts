/**
 * A real sidecar (the same createSidecar as `npm run start:sidecar`, HTTP on an ephemeral port) over an
 * in-memory store pre-filled with `argv[2]` actors, for the evaluate-over-HTTP figures. Prints one JSON line
 * with the URL, the admin token and a sample of evaluate request bodies for actors of the population.
 */
import { createSidecar } from '../authz-sidecar/sidecar.ts';
import { buildActorWorld } from './engine-bench.ts';

const actors = Number(process.argv[2] ?? 1_000);
const { store, subjects } = await buildActorWorld(actors);
const sidecar = await createSidecar({ store, adminToken: 'bench-admin-token-0123456789abcdef', brokerToken: 'bench-broker-token-0123456789abcdef' });
const port = await sidecar.listen(0);
let seed = 11;
const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
const bodies = Array.from({ length: 2_000 }, () => {
  const s = subjects[Math.floor(random() * subjects.length)]!;
  return { actor: { subjectId: s.subjectId, subjectType: 'actor' }, scopeId: s.scopeId, action: random() < 0.5 ? 'publish' : 'deploy', resource: { resourceType: 'topic', resourceId: 'app/x' } };
});
process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, token: sidecar.adminToken, bodies, actors })}\n`);
process.once('SIGTERM', () => void sidecar.close().then(() => process.exit(0)));
