import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * A TCP port that was free a moment ago (for programs that need a port number up front, like `npm start`).
 *
 * Picked at random below the kernel's ephemeral range when there is room: a port handed out by `listen(0)`
 * comes from that range, and so does the source port of every outgoing connection, so between this check and
 * the program binding the port, another test's server or client could take it (seen once in CI: "second npm
 * start", MQTT_WS_PORT in use). Below the range only another caller of this function can, one in thousands.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralRangeStart();
  if (below !== null && below > LOWEST + 1_000) {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
      if (await canListen(port)) return port;
    }
  }
  return listenAnywhere();
}

/** The lowest port picked: above the well-known and most registered service ports. */
const LOWEST = 20_000;

function ephemeralRangeStart(): number | null {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : null;
  } catch {
    return null;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function listenAnywhere(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
