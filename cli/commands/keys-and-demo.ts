/** `jwks` (the public keys actor tokens are signed with) and `demo` (two isolated tenants to try over MQTT). */
import { setupDemo } from '../demo.ts';
import { table } from '../format.ts';
import { num, OPT, str, UsageError, type Command } from '../framework/command.ts';
import { col, print } from '../framework/output.ts';

export const keysAndDemoCommands: Command[] = [
  {
    name: 'jwks',
    summary: 'print the public keys tokens are signed with',
    options: {},
    async run(ctx) {
      const res = await ctx.client.jwks();
      print(ctx, res, () => table(res.keys, [col('kid', 'kid'), col('alg', 'alg'), col('kty', 'kty'), col('crv', 'crv'), col('use', 'use')]));
    },
  },
  {
    name: 'demo',
    summary: 'set up two isolated tenants with actors and print mosquitto_sub / mosquitto_pub commands to try',
    options: {
      'mqtt-host': OPT.mqttHost,
      'mqtt-port': OPT.mqttPort,
      ttl: { type: 'string', value: '<seconds>', help: 'token lifetime (default 86400)' },
      suffix: { type: 'string', value: '<text>', help: 'slug suffix for the demo tenants (default random)' },
    },
    async run(ctx) {
      const port = num(str(ctx, 'mqtt-port') ?? '1883');
      if (typeof port !== 'number') throw new UsageError('--mqtt-port must be a number', ctx.command);
      const ttl = num(str(ctx, 'ttl'));
      if (ttl !== undefined && typeof ttl !== 'number') throw new UsageError('--ttl must be a number of seconds', ctx.command);
      const suffix = str(ctx, 'suffix');
      const result = await setupDemo(ctx.client, {
        mqttHost: str(ctx, 'mqtt-host') ?? '127.0.0.1',
        mqttPort: port,
        ...(ttl === undefined ? {} : { ttlSeconds: ttl }),
        ...(suffix === undefined ? {} : { suffix }),
      });
      print(ctx, result, () => `${table(result.actors as unknown as Array<Record<string, unknown>>, [col('tenant', 'tenant'), col('actor', 'actorId'), col('topic', 'topic')])}\n${result.commands.join('\n')}\n`);
    },
  },
];
