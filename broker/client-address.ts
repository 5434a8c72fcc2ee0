import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/**
 * The address a WebSocket client connects from, for the sidecar's per-address login throttle. The peer of
 * the socket, unless that peer is one of the configured trusted proxies (MQTT_TRUSTED_PROXIES): then the
 * `x-forwarded-for` chain is read from the right, and the first address that is not a trusted proxy is the
 * client's. A client cannot choose its throttle bucket by sending the header itself.
 */
export function clientAddressOf(req: IncomingMessage, trustedProxies: readonly string[]): string | undefined {
  const peer = normalize(req.socket.remoteAddress);
  if (!peer || !trustedProxies.includes(peer)) return peer;
  const header = req.headers['x-forwarded-for'];
  const chain = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((a) => normalize(a.trim()))
    .filter((a): a is string => a !== undefined);
  for (let i = chain.length - 1; i >= 0; i--) if (!trustedProxies.includes(chain[i]!)) return chain[i];
  return chain[0] ?? peer;
}

/** An IP address in one spelling (IPv4-mapped IPv6 as IPv4); undefined for anything that is not an address. */
export function normalize(address: string | undefined): string | undefined {
  if (!address) return undefined;
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return isIP(a) ? a.toLowerCase() : undefined;
}
