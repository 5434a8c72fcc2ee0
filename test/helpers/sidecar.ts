import { createSidecar, type Sidecar, type SidecarOptions } from '../../authz-sidecar/sidecar.ts';
import { MemoryPolicyStore } from '../../authz-sidecar/store/memory-policy-store.ts';
import type { PolicyStore } from '../../authz-sidecar/store/policy-store.ts';

export interface TestSidecar {
  sidecar: Sidecar;
  url: string;
  adminToken: string;
  brokerToken: string;
  /** Calls the API with the admin token (or `token`), returning status and parsed JSON body. */
  api<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: T }>;
  /** Like api, but throws unless the status is 2xx. */
  ok<T = any>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  close(): Promise<void>;
}

/** Starts a real sidecar on an ephemeral port over the given store (in-memory by default). */
export async function startSidecar(store: PolicyStore = new MemoryPolicyStore(), options: Partial<SidecarOptions> = {}): Promise<TestSidecar> {
  const sidecar = await createSidecar({ store, adminToken: 'test-admin-token-0123456789', brokerToken: 'test-broker-token-0123456789', ...options });
  const port = await sidecar.listen(0);
  const url = `http://127.0.0.1:${port}`;
  const api = async (method: string, path: string, body?: unknown, token = sidecar.adminToken) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* non-JSON bodies (metrics) stay text */
    }
    return { status: res.status, body: parsed as any };
  };
  return {
    sidecar,
    url,
    adminToken: sidecar.adminToken,
    brokerToken: sidecar.brokerToken,
    api,
    async ok(method, path, body, token) {
      const r = await api(method, path, body, token);
      if (r.status < 200 || r.status > 299) throw new Error(`${method} ${path} → ${r.status} ${JSON.stringify(r.body)}`);
      return r.body;
    },
    close: () => sidecar.close(),
  };
}
