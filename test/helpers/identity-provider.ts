import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import type { TrustedIssuerConfig } from '../../authz-sidecar/credentials/trusted-issuer.ts';

export interface TestIdentityProvider {
  /** What the sidecar is configured with (TRUSTED_JWT_ISSUER, TRUSTED_JWKS_URL). */
  config: TrustedIssuerConfig;
  /** A JWT of this provider for `sub` (a user's kindeId); `forged` signs it with a key the provider does not publish. */
  token(sub: string, options?: { forged?: boolean; expSeconds?: number }): Promise<string>;
  close(): Promise<void>;
}

/** A real identity provider as far as the sidecar can tell: an ES256 key whose JWKS is served over HTTP. */
export async function startIdentityProvider(issuer = 'https://idp.example.test/'): Promise<TestIdentityProvider> {
  const pair = await generateKeyPair('ES256');
  const stranger = (await generateKeyPair('ES256')).privateKey;
  const jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] };
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  return {
    config: { issuer, jwksUrl, audience: null },
    token(sub, options = {}) {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
        .setSubject(sub)
        .setIssuer(issuer)
        .setIssuedAt(now)
        .setExpirationTime(now + (options.expSeconds ?? 600))
        .sign(options.forged ? stranger : pair.privateKey);
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
