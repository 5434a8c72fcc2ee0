/**
 * The refresh answer (`POST /v1/broker/sessions`) sends each distinct place, apps list, limits and grant input
 * once: the sessions of one access scope share them, and the broker validates each once instead of once per
 * session. Packing and
 * unpacking give back the same grants; an answer whose index points outside its table is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packRefresh, refreshResponseSchema, unpackRefresh, type RefreshWire } from '../shared/broker-wire.ts';
import { createActor, createProject, startSystem, type TestSystem } from './helpers/system.ts';

let sys: TestSystem;
beforeAll(async () => {
  sys = await startSystem();
});
afterAll(() => sys?.close());

async function refresh(actorIds: string[]): Promise<RefreshWire> {
  const res = await fetch(`${sys.side.url}/v1/broker/sessions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sys.side.brokerToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ actorIds }),
  });
  expect(res.status).toBe(200);
  return refreshResponseSchema.parse(await res.json());
}

describe('refresh answer: shared parts sent once', () => {
  it('three devices of one scope share one apps entry; a device of another app gets its own; unpacked grants are whole', async () => {
    const { api } = await createProject(sys.sg, 'refresh-wire');
    const chat = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
    const metrics = await api.apps.create({ slug: 'metrics', name: 'Metrics', mode: 'open' });
    const scope = (await api.scopes.create({ slug: 'fleet', name: 'Fleet' })).accessScopeId;
    const same = await Promise.all([1, 2, 3].map((i) => createActor(api, `dev-${i}`, scope, [chat.appId])));
    const other = await createActor(api, 'dev-metrics', scope, [metrics.appId]);
    const disabled = await createActor(api, 'dev-off', scope, [chat.appId]);
    await api.actors.update(disabled.actorId, { disabled: true });

    const wire = await refresh([...same.map((a) => a.actorId), other.actorId, disabled.actorId]);
    expect(wire.apps).toHaveLength(2);
    expect(wire.limits).toHaveLength(1);
    expect(wire.places).toHaveLength(1);
    expect(wire.places[0]).toMatchObject({ accessScopeId: scope, namespace: 'fleet' });
    expect(new Set(same.map((a) => wire.sessions[a.actorId]!.apps)).size).toBe(1);
    expect(wire.sessions[other.actorId]!.apps).not.toBe(wire.sessions[same[0]!.actorId]!.apps);
    expect(wire.sessions[disabled.actorId]).toBeNull();
    // Grant inputs are sent once each: the devices of one scope share all but their own actor's.
    expect(new Set(wire.inputs).size).toBe(wire.inputs.length);
    const inputsOf = (id: string) => wire.sessions[id]!.dependsOn.map((i) => wire.inputs[i]);
    expect(inputsOf(same[0]!.actorId)).toContain(`actor:${same[0]!.actorId}`);
    expect(inputsOf(same[1]!.actorId)).not.toContain(`actor:${same[0]!.actorId}`);
    const shared = (id: string) => inputsOf(id).filter((i) => !i!.startsWith('actor:'));
    expect(shared(same[1]!.actorId)).toEqual(shared(same[0]!.actorId));
    expect(wire.sessions[same[1]!.actorId]!.dependsOn.filter((i) => !wire.inputs[i]!.startsWith('actor:'))).toEqual(wire.sessions[same[0]!.actorId]!.dependsOn.filter((i) => !wire.inputs[i]!.startsWith('actor:')));

    const whole = unpackRefresh(wire)!;
    expect(whole.sessions[same[0]!.actorId]!.apps.map((a) => a.slug)).toEqual(['chat']);
    expect(whole.sessions[other.actorId]!.apps.map((a) => a.slug)).toEqual(['metrics']);
    expect(whole.sessions[other.actorId]!.actorId).toBe(other.actorId);
    expect(whole.sessions[same[0]!.actorId]!.dependsOn).toEqual(inputsOf(same[0]!.actorId));
    // Packing what was unpacked gives the same answer back.
    expect(packRefresh(whole.revision, whole.sessions)).toEqual(wire);
  });

  it('an index outside its table makes the answer unusable (the broker treats it as a sidecar failure)', async () => {
    const { api } = await createProject(sys.sg, 'refresh-wire-bad');
    const app = await api.apps.create({ slug: 'chat', name: 'Chat', mode: 'open' });
    const a = await createActor(api, 'dev', null, [app.appId]);
    const wire = await refresh([a.actorId]);
    expect(unpackRefresh(wire)).not.toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, apps: 5 } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, limits: 1 } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, dependsOn: [wire.inputs.length] } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, dependsOn: [-1] } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, dependsOn: [0.5] } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, apps: -1 } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, place: 1 } } })).toBeNull();
    expect(unpackRefresh({ ...wire, sessions: { [a.actorId]: { ...wire.sessions[a.actorId]!, limits: 0.5 } } })).toBeNull();
  });
});
