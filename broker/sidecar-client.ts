import {
  connectResponseSchema,
  refreshResponseSchema,
  type ConnectRequest,
  type ConnectResponse,
  type RefreshResponse,
} from '../shared/broker-wire.ts';

/** The sidecar could not be asked (down, timed out, answered 5xx or nonsense): the broker fails closed. */
export class SidecarUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SidecarUnavailableError';
  }
}

function validated<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new SidecarUnavailableError(`${what}: the sidecar's answer does not match the wire schema`);
  return result.data;
}

/**
 * The broker's only way to talk to the sidecar's decision API (`/v1/broker/*`). Every answer is validated
 * against the shared wire schema; anything else is SidecarUnavailableError, never a guess.
 */
export class SidecarClient {
  constructor(
    readonly baseUrl: string,
    private readonly token: string,
    private readonly timeoutMs: number,
  ) {}

  async connect(request: ConnectRequest): Promise<ConnectResponse> {
    return validated(connectResponseSchema, await this.post('/v1/broker/connect', request), 'connect');
  }

  async refresh(actorIds: string[]): Promise<RefreshResponse> {
    return validated(refreshResponseSchema, await this.post('/v1/broker/sessions', { actorIds }), 'sessions');
  }

  /** Opens the change feed (text/event-stream); the caller reads and closes it. */
  async openChangeFeed(signal: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}/v1/broker/changes`, { headers: { authorization: `Bearer ${this.token}` }, signal });
    } catch (err) {
      throw new SidecarUnavailableError(`change feed: ${(err as Error).message}`);
    }
    if (!res.ok || !res.body) throw new SidecarUnavailableError(`change feed: HTTP ${res.status}`);
    return res.body;
  }

  private async post(path: string, body: unknown): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(`${this.baseUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new SidecarUnavailableError(`${path}: ${(err as Error).message}`);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw new SidecarUnavailableError(`${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    try {
      return JSON.parse(text);
    } catch {
      throw new SidecarUnavailableError(`${path}: answer is not JSON`);
    }
  }
}
