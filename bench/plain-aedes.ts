/**
 * The comparison point of `npm run bench`: plain Aedes 1.x with no hooks, the same options and in-memory
 * persistence as ScopeGate's broker, on TCP. Prints {"tcpPort": n} once listening.
 */
import { createServer, type AddressInfo } from 'node:net';
import { Aedes } from 'aedes';

const aedes = await Aedes.createBroker({ maxTopicLevels: 100 });
// Same socket options as ScopeGate's broker (no Nagle), so that only the hooks differ.
const server = createServer({ noDelay: true }, (socket) => aedes.handle(socket));
server.listen(Number(process.env.MQTT_PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ tcpPort: (server.address() as AddressInfo).port })}\n`);
});
process.once('SIGTERM', () => {
  server.close();
  aedes.close(() => process.exit(0));
});
