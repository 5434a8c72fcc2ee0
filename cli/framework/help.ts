/** Usage texts: the whole CLI, a command group, one command, and the short usage after a usage error. */
import { GLOBAL_OPTIONS, type Command, type OptSpec, type UsageError } from './command.ts';

/** The command groups (first words), in the order the commands are listed. */
export function groupsOf(commands: readonly Command[]): string[] {
  return [...new Set(commands.map((c) => c.name.split(' ')[0]!))];
}

function optionUsage(name: string, o: OptSpec): string {
  const s = o.type === 'boolean' ? `--${name}` : `--${name} ${o.value ?? '<value>'}`;
  return o.required ? s : `[${s}]`;
}

export function synopsis(c: Command): string {
  const opts = Object.entries(c.options).map(([n, o]) => optionUsage(n, o));
  return ['scopegate', c.name, ...(c.args ? [c.args] : []), ...opts].join(' ');
}

export function commandHelp(c: Command): string {
  const rows = Object.entries({ ...c.options, ...GLOBAL_OPTIONS }).map(([n, o]) => {
    const flagText = `${o.short ? `-${o.short}, ` : '    '}--${n}${o.type === 'string' ? ` ${o.value ?? '<value>'}` : ''}`;
    return `  ${flagText.padEnd(44)} ${o.help}${o.required ? ' (required)' : ''}`;
  });
  return `${c.summary}\n\nusage: ${synopsis(c)}\n\noptions:\n${rows.join('\n')}\n`;
}

export function groupHelp(commands: readonly Command[], group: string): string {
  const cs = commands.filter((c) => c.name.split(' ')[0] === group);
  return `usage:\n${cs.map((c) => `  ${synopsis(c)}`).join('\n')}\n\nRun 'scopegate ${group} <command> --help' for details.\n`;
}

const GROUP_SUMMARY: Record<string, string> = {
  tenant: 'tenants (organizations)',
  workspace: 'workspaces in a tenant',
  project: 'projects in a workspace',
  environment: 'environments in a project',
  scope: 'access scopes in a project (--org --project)',
  app: 'apps and their actor grants (--org --project)',
  actor: 'MQTT actors: devices, agents, services (--org --project)',
  token: "an actor's JWT + a mosquitto_pub line (--org --project)",
  secret: "an actor's long-lived secrets (--org --project)",
  role: 'roles and role assignments',
  permission: 'permissions',
  'role-permission': 'which permissions a role holds',
  user: 'users (people)',
  membership: 'subjects that are members of a scope',
  audit: 'the audit log',
  sessions: 'live MQTT sessions (list, disconnect)',
  mqtt: 'MQTT decisions explained',
};

export function mainHelp(commands: readonly Command[]): string {
  const rows = groupsOf(commands).map((g) => {
    const cs = commands.filter((c) => c.name.split(' ')[0] === g);
    const single = cs.length === 1 && cs[0]!.name === g;
    return [g, single ? cs[0]!.summary : `${cs.map((c) => c.name.split(' ')[1]).join(' | ')}  — ${GROUP_SUMMARY[g] ?? ''}`] as const;
  });
  const width = Math.max(...rows.map(([g]) => g.length));
  return (
    `scopegate: admin CLI for ScopeGate (multi-tenant MQTT broker + authorization sidecar)\n\n` +
    `usage: scopegate <command> [<subcommand>] [options] [--url <url>] [--token <token>] [--json]\n\n` +
    `commands:\n${rows.map(([g, text]) => `  ${g.padEnd(width)}  ${text}`).join('\n')}\n\n` +
    `global options:\n` +
    Object.entries(GLOBAL_OPTIONS)
      .map(([n, o]) => `  ${`${o.short ? `-${o.short}, ` : '    '}--${n}${o.type === 'string' ? ` ${o.value}` : ''}`.padEnd(24)} ${o.help}`)
      .join('\n') +
    `\n\nenvironment: SCOPEGATE_URL, AUTHZ_ADMIN_TOKEN; SCOPEGATE_ORG and SCOPEGATE_PROJECT default --org/--project.\n` +
    `examples:\n` +
    `  scopegate tenant create --name 'Acme Corp' --slug acme\n` +
    `  scopegate actor create --org tenant_… --project project_… --name sensor-1 --scope scope_…\n` +
    `  scopegate evaluate --subject user_… --scope scope_… --action read --resource-type doc --explain\n\n` +
    `Run 'scopegate <command> --help' for a command's options. Exit codes: 0 ok, 1 API or network error, 2 usage error.\n`
  );
}

export function shortUsage(commands: readonly Command[], err: UsageError): string {
  if (err.command) return `usage: ${synopsis(err.command)}\nRun 'scopegate ${err.command.name} --help' for details.\n`;
  if (err.group) return groupHelp(commands, err.group);
  return `usage: scopegate <command> [options]\ncommands: ${groupsOf(commands).join(', ')}\nRun 'scopegate --help' for the list of commands.\n`;
}
