import { describe, expect, it } from 'vitest';
import { MemoryPolicyStore } from '../authz-sidecar/store/memory-policy-store.ts';
import { policyStoreContract, tenant } from './store-contract.ts';

policyStoreContract('MemoryPolicyStore', async () => {
  const store = new MemoryPolicyStore();
  return { store, sibling: () => store, done: () => store.close() };
});

describe('MemoryPolicyStore change log', () => {
  it("answers 'gap' once events were dropped", async () => {
    const store = new MemoryPolicyStore({ changeLogSize: 2 });
    for (let i = 1; i <= 4; i++) {
      await store.commit({ expect: {}, puts: [tenant(i)], deletes: [], audit: { principal: 'admin', action: 't', at: '', tenantIds: [], before: [], after: [] } });
    }
    expect(await store.changesSince(0)).toBe('gap');
    expect(await store.changesSince(1)).toBe('gap');
    expect(((await store.changesSince(2)) as { seq: number }[]).map((e) => e.seq)).toEqual([3, 4]);
    expect(await store.changesSince(4)).toEqual([]);
  });
});
