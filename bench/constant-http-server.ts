/**
 * The floor under the evaluate figure: a Node HTTP server that reads each request's body and answers a
 * constant decision-sized JSON body, nothing else. Driven by the same load process as the sidecar, it shows
 * what Node's HTTP stack, the kernel and this machine cost per request before any decision is made.
 * Prints one JSON line with the URL (and the token and bodies the load process expects).
 */
import { createServer } from 'node:http';

const body = JSON.stringify({ decision: 'ALLOWED', reason: 'role_permission', revision: 1, matched: { roleId: 'role_0000000000000000', permissionId: 'perm_0000000000000000', scopeId: 'scope_0000000000000000' } });
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, token: 'none', bodies: [{ actor: { subjectId: 'x', subjectType: 'actor' }, scopeId: 'y', action: 'publish' }] })}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
