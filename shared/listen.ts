import type { Server as HttpServer } from 'node:http';
import type { AddressInfo, Server as NetServer } from 'node:net';
import { createServer } from 'node:net';
import { ConfigError } from './config.ts';

/**
 * A listener that could not start, told the way an operator fixes it: the port, the address and the variable
 * to set (`port 1883 is in use: set MQTT_PORT`). It is a ConfigError so that both processes print it as a
 * plain message, without a stack trace.
 */
export class ListenError extends ConfigError {
  constructor(message: string) {
    super([message]);
    this.message = message;
    this.name = 'ListenError';
  }
}

/** The operator-facing sentence for a failed bind of `port` on `host` (configured through `envVar`). */
export function describeListenFailure(err: NodeJS.ErrnoException, port: number, host: string, envVar: string): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return `port ${port} is in use on ${host}: set ${envVar} to a free port (or stop what listens there)`;
    case 'EACCES':
      return `port ${port} on ${host} needs privileges this process does not have: set ${envVar} to a port above 1023`;
    case 'EADDRNOTAVAIL':
      return `address ${host} is not available on this machine (port ${port}, ${envVar})`;
    default:
      return `cannot listen on ${host}:${port} (${envVar}): ${err.code ?? err.message}`;
  }
}

/**
 * Listens on `port` (0 = ephemeral) and resolves with the port chosen. A bind failure rejects with a
 * ListenError naming the port and `envVar`; it never surfaces as an unhandled 'error' event.
 */
export function listenOn(server: NetServer | HttpServer, port: number, host: string, envVar: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(new ListenError(describeListenFailure(err, port, host, envVar)));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Whether `port` can be bound on `host` right now (a probe that closes at once). Port 0 is always free. */
export function probePort(port: number, host: string): Promise<NodeJS.ErrnoException | null> {
  if (port === 0) return Promise.resolve(null);
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    probe.listen({ port, host, exclusive: true }, () => probe.close(() => resolve(null)));
  });
}
