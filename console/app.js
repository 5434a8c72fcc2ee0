// ScopeGate admin console: preact + htm from one vendored ES module, no build step. Every read and write
// goes through the public HTTP API with the signed-in token; with an API key only its subtree is shown.
import { html, render, useState, useEffect, useCallback, useRef } from './vendor/preact-htm.js';
import { api, listAll, orgPath, token, ApiError } from './api.js';

const PAGES = [
  ['tree', 'Scope tree'],
  ['project', 'Actors & apps'],
  ['roles', 'Roles & permissions'],
  ['explain', 'Explain'],
  ['sessions', 'Live sessions'],
  ['audit', 'Audit log'],
];

function useHashRoute() {
  const read = () => (location.hash.replace(/^#\/?/, '') || 'tree').split('/').map(decodeURIComponent);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** Runs an async loader, keeps its result, error and a reload function. */
function useLoad(fn, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ data, error: null, loading: false }),
      (error) => live && setState({ data: null, error, loading: false }),
    );
    return () => { live = false; };
  }, [...deps, tick]);
  return { ...state, reload: useCallback(() => setTick((t) => t + 1), []) };
}

const ErrorBox = ({ error }) => (error ? html`<div class="error" role="alert">${String(error.message || error)}</div>` : null);

/** Runs an action, reports its error in place. */
function useAction() {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const run = async (fn) => {
    setError(null);
    setBusy(true);
    try {
      return await fn();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run };
}

// ------------------------------------------------------------------------------------------------------
// The tenant's world, loaded once per tenant and page: scopes, types, entities, actors, apps, sessions.

async function loadTenant(me, tenantId) {
  const [scopes, types, workspaces, projects, sessions] = await Promise.all([
    listAll(`/v1/scopes?tenantId=${encodeURIComponent(tenantId)}`),
    listAll('/v1/scope-types'),
    listAll(`/v1/workspaces?tenantId=${encodeURIComponent(tenantId)}`).catch(() => []),
    listAll(`/v1/projects?tenantId=${encodeURIComponent(tenantId)}`).catch(() => []),
    api('GET', `/v1/sessions?tenantId=${encodeURIComponent(tenantId)}&limit=1000`).then((r) => r.data),
  ]);
  const actors = [];
  const apps = [];
  for (const p of projects) {
    const base = orgPath(tenantId, p.id);
    const [a, b] = await Promise.all([listAll(`${base}/actors`).catch(() => []), listAll(`${base}/apps`).catch(() => [])]);
    actors.push(...a);
    apps.push(...b.map((x) => ({ ...x, projectId: p.id })));
  }
  return { tenantId, scopes, types, workspaces, projects, sessions, actors, apps };
}

function useTenants(me) {
  return useLoad(async () => {
    if (me.kind === 'apiKey') {
      const visible = await listAll('/v1/tenants').catch(() => []);
      return visible.length ? visible : [{ id: me.tenantId, name: me.scopeName || me.tenantId, scopeId: me.scopeId }];
    }
    return listAll('/v1/tenants');
  }, [me.id]);
}

function TenantPicker({ tenants, value, onChange }) {
  return html`<label>Tenant
    <select value=${value || ''} onChange=${(e) => onChange(e.currentTarget.value)}>
      <option value="">— choose a tenant —</option>
      ${tenants.map((t) => html`<option value=${t.id}>${t.name} (${t.slug || t.id})</option>`)}
    </select></label>`;
}

/** The selected tenant, remembered for the browser session. */
function useTenantChoice(tenants) {
  const [tenantId, setTenantId] = useState(sessionStorage.getItem('scopegate.console.tenant') || '');
  useEffect(() => {
    if (!tenants) return;
    // From the current choice, not this render's: a choice made before the effect ran is kept.
    setTenantId((current) => (tenants.some((t) => t.id === current) ? current : tenants.length === 1 ? tenants[0].id : ''));
  }, [tenants]);
  const choose = (id) => {
    sessionStorage.setItem('scopegate.console.tenant', id);
    setTenantId(id);
  };
  return [tenantId, choose];
}

// ------------------------------------------------------------------------------------------------------
// Sign in

function SignIn({ onSignedIn }) {
  const [value, setValue] = useState('');
  const { error, busy, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      token.set(value.trim());
      try {
        onSignedIn(await api('GET', '/v1/whoami'));
      } catch (err) {
        token.clear();
        throw err instanceof ApiError && err.status === 401 ? new Error('That token is not valid.') : err;
      }
    });
  };
  return html`<main id="main" class="signin"><section class="card">
    <h1>ScopeGate console</h1>
    <p class="muted">Sign in with the admin token or an API key. It is kept for this browser tab only (sessionStorage).</p>
    <form onSubmit=${submit}>
      <label>Admin token or API key
        <input type="password" name="token" autocomplete="off" required value=${value} onInput=${(e) => setValue(e.currentTarget.value)} /></label>
      <p><button class="primary" type="submit" disabled=${busy}>Sign in</button></p>
    </form>
    <${ErrorBox} error=${error} />
  </section></main>`;
}

// ------------------------------------------------------------------------------------------------------
// Scope tree

function typeOf(world, scope) {
  return world.types.find((t) => t.id === scope.typeId);
}

function projectOfScope(world, scope) {
  let s = scope;
  for (let i = 0; s && i < 100; i++) {
    const p = world.projects.find((x) => x.scopeId === s.id);
    if (p) return p;
    s = world.scopes.find((x) => x.id === s.parentId);
  }
  return null;
}

/** Is `scope` the scope `rootId` or below it? */
function inSubtree(world, scope, rootId) {
  let s = scope;
  for (let i = 0; s && i < 100; i++) {
    if (s.id === rootId) return true;
    s = world.scopes.find((x) => x.id === s.parentId);
  }
  return false;
}

/** An access scope by the names of its access-scope ancestors and its own: "Acme / Staging". */
function accessPathName(world, scope) {
  const names = [];
  for (let s = scope, i = 0; s && s.typeId === 'type_access' && i < 100; i++) {
    names.unshift(s.name);
    s = world.scopes.find((x) => x.id === s.parentId);
  }
  return names.join(' / ');
}

function TreePage({ me }) {
  const tenants = useTenants(me);
  const [tenantId, setTenantId] = useTenantChoice(tenants.data);
  const world = useLoad(() => (tenantId ? loadTenant(me, tenantId) : Promise.resolve(null)), [tenantId]);
  const [preview, setPreview] = useState(null);
  const act = useAction();

  const reloadAll = () => { tenants.reload(); world.reload(); };
  return html`<h2>Scope tree</h2>
    ${me.kind === 'root' && html`<${CreateTenant} onDone=${(t) => { tenants.reload(); setTenantId(t.id); }} />`}
    <section class="card" aria-labelledby="tree-h">
      <h3 id="tree-h">Tenant</h3>
      <${ErrorBox} error=${tenants.error || world.error || act.error} />
      ${tenants.data && html`<${TenantPicker} tenants=${tenants.data} value=${tenantId} onChange=${setTenantId} />`}
      ${world.data && html`<${Tree} world=${world.data} me=${me} act=${act} onChanged=${reloadAll} onPreview=${setPreview} />`}
    </section>
    ${preview && html`<${DeletePreview} preview=${preview} onClose=${() => setPreview(null)} onDone=${() => { setPreview(null); reloadAll(); }} />`}`;
}

function CreateTenant({ onDone }) {
  const [name, setName] = useState('');
  const [slug, setSlug] = useState('');
  const { error, busy, run } = useAction();
  const submit = (e) => {
    e.preventDefault();
    run(async () => {
      const t = await api('POST', '/v1/tenants', { name, ...(slug ? { slug } : {}) });
      setName(''); setSlug('');
      onDone(t);
    });
  };
  return html`<section class="card" aria-labelledby="ct-h"><h3 id="ct-h">New tenant</h3>
    <form class="inline" onSubmit=${submit}>
      <label>Name<input name="tenant-name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></label>
      <label>Slug (optional)<input name="tenant-slug" value=${slug} onInput=${(e) => setSlug(e.currentTarget.value)} /></label>
      <button class="primary" type="submit" disabled=${busy}>Create tenant</button>
    </form><${ErrorBox} error=${error} /></section>`;
}

function Tree({ world, me, act, onChanged, onPreview }) {
  const ids = new Set(world.scopes.map((s) => s.id));
  const roots = world.scopes.filter((s) => !s.parentId || !ids.has(s.parentId));
  return html`<ul class="tree" aria-label="Scope tree">${roots.map((s) => html`<${TreeNode} scope=${s} world=${world} me=${me} act=${act} onChanged=${onChanged} onPreview=${onPreview} />`)}</ul>`;
}

function TreeNode({ scope, world, me, act, onChanged, onPreview }) {
  const children = world.scopes.filter((s) => s.parentId === scope.id).sort((a, b) => (a.name < b.name ? -1 : 1));
  const type = typeOf(world, scope);
  const actorsHere = world.actors.filter((a) => a.accessScopeId === scope.id || (a.accessScopeId === null && world.projects.some((p) => p.id === a.projectId && p.scopeId === scope.id))).length;
  const sessionsBelow = world.sessions.filter((s) => s.scopePath.includes(scope.id)).length;
  const project = projectOfScope(world, scope);
  const [form, setForm] = useState(null);
  const [text, setText] = useState('');
  const [slug, setSlug] = useState('');
  // A form opened from the keyboard takes the focus, so its first field is where typing goes.
  const formRef = useRef();
  useEffect(() => {
    const first = form && formRef.current && formRef.current.querySelector('input, select');
    if (first) first.focus();
  }, [form]);
  const kind = scope.typeId;
  const label = `${type ? type.name : kind} ${scope.name}`;

  const submit = (e) => {
    e.preventDefault();
    act.run(async () => {
      if (form === 'rename') await api('PATCH', `/v1/scopes/${scope.id}`, { name: text });
      else if (form === 'workspace') await api('POST', '/v1/workspaces', { tenantId: scope.tenantId, name: text });
      else if (form === 'project') {
        const ws = world.workspaces.find((w) => w.scopeId === scope.id);
        await api('POST', '/v1/projects', { workspaceId: ws.id, name: text });
      } else if (form === 'move') {
        await api('PATCH', `${orgPath(scope.tenantId, project.id)}/scopes/${scope.id}`, { parentScopeId: text === project.scopeId ? null : text });
      } else if (form === 'access') {
        const body = { slug, name: text, ...(project && project.scopeId !== scope.id ? { parentScopeId: scope.id } : {}) };
        await api('POST', `${orgPath(scope.tenantId, project.id)}/scopes`, body);
      }
      setForm(null); setText(''); setSlug('');
      onChanged();
    });
  };
  const previewDelete = () => act.run(async () => {
    const r = await api('DELETE', `/v1/scopes/${scope.id}?cascade=true&dryRun=true`);
    onPreview({ scope, deleted: r.deleted });
  });
  const canAddAccess = project && (kind === 'type_project' || kind === 'type_access');
  // An access scope moves, with its subtree, under the project or another access scope of it (not its own
  // subtree); an API key never moves its own root.
  const canMove = project && kind === 'type_access' && !(me.kind === 'apiKey' && me.scopeId === scope.id);
  const moveTargets = canMove ? world.scopes.filter((s) => (s.id === project.scopeId || (s.typeId === 'type_access' && projectOfScope(world, s) === project)) && s.id !== scope.parentId && !inSubtree(world, s, scope.id)) : [];
  return html`<li>
    <div class="node">
      <span class="name">${scope.name}</span>
      <span class="badge">${type ? type.name : kind}</span>
      <span class=${`badge ${type && type.config && type.config.permissionMode === 'define' ? 'define' : ''}`} title="permission mode">${type && type.config ? type.config.permissionMode : '?'}</span>
      <span class="mono muted">${scope.slug}</span>
      <span class="counts" aria-label=${`${actorsHere} actors, ${sessionsBelow} live sessions`}>${actorsHere} actors · ${sessionsBelow} sessions</span>
      ${project && kind === 'type_project' && html`<a href=${`#/project/${scope.tenantId}/${project.id}`}>Actors & apps</a>`}
      <button class="link" type="button" onClick=${() => { setForm('rename'); setText(scope.name); }} aria-label=${`Rename ${label}`}>Rename</button>
      ${kind === 'type_tenant' && html`<button class="link" type="button" onClick=${() => setForm('workspace')} aria-label=${`Add workspace to ${label}`}>Add workspace</button>`}
      ${kind === 'type_workspace' && html`<button class="link" type="button" onClick=${() => setForm('project')} aria-label=${`Add project to ${label}`}>Add project</button>`}
      ${canAddAccess && html`<button class="link" type="button" onClick=${() => setForm('access')} aria-label=${`Add access scope under ${label}`}>Add access scope</button>`}
      ${canMove && html`<button class="link" type="button" onClick=${() => { setForm('move'); setText(moveTargets.length ? moveTargets[0].id : ''); }} aria-label=${`Move ${label}`}>Move…</button>`}
      ${!(me.kind === 'apiKey' && me.scopeId === scope.id) && html`<button class="link bad" type="button" onClick=${previewDelete} aria-label=${`Delete ${label}`}>Delete…</button>`}
    </div>
    ${form === 'move' && html`<form class="inline" ref=${formRef} onSubmit=${submit} aria-label=${`Move ${label}`}>
      <label>New parent of ${scope.name}<select name="move-parent" required value=${text} onChange=${(e) => setText(e.currentTarget.value)}>
        ${moveTargets.map((t) => html`<option value=${t.id}>${t.id === project.scopeId ? `${t.name} (project level)` : accessPathName(world, t)}</option>`)}
      </select></label>
      <span class="muted">Its actors' topics move to the new namespace at once.</span>
      <button class="primary" type="submit" disabled=${!text}>Move</button>
      <button type="button" onClick=${() => setForm(null)}>Cancel</button>
    </form>`}
    ${form && form !== 'move' && html`<form class="inline" ref=${formRef} onSubmit=${submit} aria-label=${`${form} form`}>
      ${form === 'access' && html`<label>Slug<input name="scope-slug" required value=${slug} onInput=${(e) => setSlug(e.currentTarget.value)} /></label>`}
      <label>${form === 'rename' ? 'New name' : 'Name'}<input name="node-name" required value=${text} onInput=${(e) => setText(e.currentTarget.value)} /></label>
      <button class="primary" type="submit">${form === 'rename' ? 'Rename' : 'Create'}</button>
      <button type="button" onClick=${() => setForm(null)}>Cancel</button>
    </form>`}
    ${children.length > 0 && html`<ul>${children.map((c) => html`<${TreeNode} scope=${c} world=${world} me=${me} act=${act} onChanged=${onChanged} onPreview=${onPreview} />`)}</ul>`}
  </li>`;
}

function DeletePreview({ preview, onClose, onDone }) {
  const { error, busy, run } = useAction();
  const ref = useRef();
  useEffect(() => { ref.current && ref.current.focus(); }, []);
  const byKind = {};
  for (const d of preview.deleted) byKind[d.kind] = (byKind[d.kind] || 0) + 1;
  return html`<section class="card" role="dialog" aria-modal="false" aria-labelledby="del-h" tabindex="-1" ref=${ref}>
    <h3 id="del-h">Delete ${preview.scope.name}?</h3>
    <p>A cascade delete would remove ${preview.deleted.length} records: ${Object.entries(byKind).map(([k, n]) => `${n} ${k}`).join(', ')}.</p>
    <details><summary>Every record</summary><ul>${preview.deleted.map((d) => html`<li class="mono">${d.kind} ${d.id}</li>`)}</ul></details>
    <p><button class="danger" type="button" disabled=${busy} onClick=${() => run(async () => { await api('DELETE', `/v1/scopes/${preview.scope.id}?cascade=true`); onDone(); })}>Delete ${preview.deleted.length} records</button>
    <button type="button" onClick=${onClose}>Cancel</button></p>
    <${ErrorBox} error=${error} />
  </section>`;
}

// ------------------------------------------------------------------------------------------------------
// Project: actors and apps

function ProjectPage({ me, route }) {
  const tenants = useTenants(me);
  const [tenantId, setTenantId] = useTenantChoice(tenants.data);
  const world = useLoad(() => (tenantId ? loadTenant(me, tenantId) : Promise.resolve(null)), [tenantId]);
  const [projectId, setProjectId] = useState(route[2] || '');
  useEffect(() => { if (route[1]) setTenantId(route[1]); if (route[2]) setProjectId(route[2]); }, [route[1], route[2]]);
  useEffect(() => {
    if (world.data && !world.data.projects.some((p) => p.id === projectId) && world.data.projects.length > 0) setProjectId(world.data.projects[0].id);
  }, [world.data]);
  const project = world.data && world.data.projects.find((p) => p.id === projectId);
  return html`<h2>Actors & apps</h2>
    <section class="card">
      <${ErrorBox} error=${tenants.error || world.error} />
      <form class="inline" onSubmit=${(e) => e.preventDefault()}>
        ${tenants.data && html`<${TenantPicker} tenants=${tenants.data} value=${tenantId} onChange=${setTenantId} />`}
        ${world.data && html`<label>Project<select value=${projectId} onChange=${(e) => setProjectId(e.currentTarget.value)}>
          ${world.data.projects.map((p) => html`<option value=${p.id}>${p.name}</option>`)}</select></label>`}
      </form>
    </section>
    ${project && html`<${ProjectDetail} world=${world.data} project=${project} onChanged=${world.reload} />`}`;
}

function ProjectDetail({ world, project, onChanged }) {
  const base = orgPath(world.tenantId, project.id);
  const grants = useLoad(async () => {
    const all = [];
    for (const app of world.apps.filter((a) => a.projectId === project.id)) all.push(...(await listAll(`${base}/apps/${app.id}/actors`)));
    return all;
  }, [project.id, world]);
  const act = useAction();
  const [issued, setIssued] = useState(null);
  const apps = world.apps.filter((a) => a.projectId === project.id);
  const actors = world.actors.filter((a) => a.projectId === project.id);
  const accessScopes = world.scopes.filter((s) => s.typeId === 'type_access' && projectOfScope(world, s)?.id === project.id);
  const scopeName = (id) => (id ? (world.scopes.find((s) => s.id === id) || { name: id }).name : '(project level)');
  const changed = () => { onChanged(); grants.reload(); };
  const namespaceOf = (actor) => {
    const slugs = [];
    let s = world.scopes.find((x) => x.id === actor.accessScopeId);
    while (s && s.id !== project.scopeId) { slugs.unshift(s.slug); s = world.scopes.find((x) => x.id === s.parentId); }
    return slugs.join('/');
  };
  const issue = (actor) => act.run(async () => {
    const t = await api('POST', `${base}/actors/${actor.id}/tokens`, { ttlSeconds: 3600 });
    const granted = (grants.data || []).filter((g) => g.actorId === actor.id).map((g) => apps.find((a) => a.id === g.appId)).filter(Boolean);
    const app = granted[0] || apps[0];
    const topic = `${app ? app.slug : 'my-app'}/${actor.accessScopeId ? '' : 'some-scope/'}chat/messages`;
    setIssued({ actor, token: t.token, expiresAt: t.expiresAt, topic, namespace: namespaceOf(actor) });
  });
  return html`
    <div class="grid2">
      <section class="card" aria-labelledby="apps-h"><h3 id="apps-h">Apps of ${project.name}</h3>
        <table><thead><tr><th scope="col">Slug</th><th scope="col">Name</th><th scope="col">Mode</th></tr></thead>
        <tbody>${apps.map((a) => html`<tr><td class="mono">${a.slug}</td><td>${a.name}</td><td>${a.mode}</td></tr>`)}</tbody></table>
        <${CreateApp} base=${base} onDone=${changed} />
      </section>
      <section class="card" aria-labelledby="newactor-h"><h3 id="newactor-h">New actor</h3>
        <${CreateActor} base=${base} scopes=${accessScopes} onDone=${changed} />
      </section>
    </div>
    <section class="card" aria-labelledby="actors-h"><h3 id="actors-h">Actors</h3>
      <${ErrorBox} error=${act.error || grants.error} />
      ${issued && html`<${IssuedToken} issued=${issued} onClose=${() => setIssued(null)} />`}
      <table><thead><tr><th scope="col">Actor</th><th scope="col">Scope (namespace)</th><th scope="col">Apps</th><th scope="col">State</th><th scope="col">Actions</th></tr></thead>
      <tbody>${actors.map((a) => {
        const mine = (grants.data || []).filter((g) => g.actorId === a.id);
        const notGranted = apps.filter((app) => !mine.some((g) => g.appId === app.id));
        return html`<tr>
          <td><strong>${a.name}</strong><br/><span class="mono muted">${a.id}</span></td>
          <td><label><span class="sr-only">Scope of ${a.name}</span>
            <select aria-label=${`Move ${a.name} to scope`} value=${a.accessScopeId || ''} onChange=${(e) => act.run(async () => { await api('PATCH', `${base}/actors/${a.id}`, { accessScopeId: e.currentTarget.value || null }); changed(); })}>
              <option value="">(project level)</option>
              ${accessScopes.map((s) => html`<option value=${s.id}>${s.name}</option>`)}
            </select></label>
            <div class="mono muted">${namespaceOf(a) || '—'}</div></td>
          <td>${mine.map((g) => {
            const app = apps.find((x) => x.id === g.appId);
            return html`<div>${app ? app.slug : g.appId} <button class="link" type="button" aria-label=${`Revoke ${app ? app.slug : g.appId} from ${a.name}`} onClick=${() => act.run(async () => { await api('DELETE', `${base}/apps/${g.appId}/actors/${a.id}`); changed(); })}>Revoke</button></div>`;
          })}
            ${notGranted.length > 0 && html`<${GrantApp} actor=${a} apps=${notGranted} base=${base} onDone=${changed} act=${act} />`}</td>
          <td>${a.disabled ? html`<span class="bad">disabled</span>` : html`<span class="ok">enabled</span>`}</td>
          <td><button type="button" onClick=${() => issue(a)} disabled=${a.disabled} aria-label=${`Issue token for ${a.name}`}>Issue token</button>
            <button type="button" aria-label=${`${a.disabled ? 'Enable' : 'Disable'} ${a.name}`} onClick=${() => act.run(async () => { await api('PATCH', `${base}/actors/${a.id}`, { disabled: !a.disabled }); changed(); })}>${a.disabled ? 'Enable' : 'Disable'}</button></td>
        </tr>`;
      })}</tbody></table>
    </section>`;
}

function GrantApp({ actor, apps, base, onDone, act }) {
  const [appId, setAppId] = useState(apps[0].id);
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); act.run(async () => { await api('POST', `${base}/apps/${appId}/actors`, { actorId: actor.id }); onDone(); }); }}>
    <label><span class="sr-only">App to grant to ${actor.name}</span><select aria-label=${`App to grant to ${actor.name}`} value=${appId} onChange=${(e) => setAppId(e.currentTarget.value)}>${apps.map((a) => html`<option value=${a.id}>${a.slug}</option>`)}</select></label>
    <button type="submit" aria-label=${`Grant app to ${actor.name}`}>Grant</button></form>`;
}

function CreateApp({ base, onDone }) {
  const [slug, setSlug] = useState('');
  const [name, setName] = useState('');
  const [mode, setMode] = useState('open');
  const { error, busy, run } = useAction();
  return html`<h4>New app</h4><form class="inline" onSubmit=${(e) => { e.preventDefault(); run(async () => { await api('POST', `${base}/apps`, { slug, name, mode }); setSlug(''); setName(''); onDone(); }); }}>
    <label>App slug<input name="app-slug" required value=${slug} onInput=${(e) => setSlug(e.currentTarget.value)} /></label>
    <label>App name<input name="app-name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></label>
    <label>Mode<select name="app-mode" value=${mode} onChange=${(e) => setMode(e.currentTarget.value)}><option value="open">open</option><option value="rbac">rbac</option></select></label>
    <button class="primary" type="submit" disabled=${busy}>Create app</button></form><${ErrorBox} error=${error} />`;
}

function CreateActor({ base, scopes, onDone }) {
  const [name, setName] = useState('');
  const [kind, setKind] = useState('device');
  const [scopeId, setScopeId] = useState('');
  const { error, busy, run } = useAction();
  return html`<form class="inline" onSubmit=${(e) => { e.preventDefault(); run(async () => { await api('POST', `${base}/actors`, { name, kind, accessScopeId: scopeId || null }); setName(''); onDone(); }); }}>
    <label>Actor name<input name="actor-name" required value=${name} onInput=${(e) => setName(e.currentTarget.value)} /></label>
    <label>Kind<select name="actor-kind" value=${kind} onChange=${(e) => setKind(e.currentTarget.value)}><option value="device">device</option><option value="agent">agent</option><option value="service">service</option></select></label>
    <label>Access scope<select name="actor-scope" value=${scopeId} onChange=${(e) => setScopeId(e.currentTarget.value)}><option value="">(project level)</option>${scopes.map((s) => html`<option value=${s.id}>${s.name}</option>`)}</select></label>
    <button class="primary" type="submit" disabled=${busy}>Create actor</button></form><${ErrorBox} error=${error} />`;
}

function IssuedToken({ issued, onClose }) {
  const host = location.hostname || '127.0.0.1';
  const sub = `mosquitto_sub -h ${host} -p 1883 -u '${issued.actor.id}' -P '${issued.token}' -t '${issued.topic}' -v`;
  const pub = `mosquitto_pub -h ${host} -p 1883 -u '${issued.actor.id}' -P '${issued.token}' -t '${issued.topic}' -m 'hello'`;
  const ref = useRef();
  useEffect(() => { ref.current && ref.current.focus(); }, []);
  return html`<div class="notice" role="status" tabindex="-1" ref=${ref} aria-labelledby="tok-h">
    <h4 id="tok-h">Token for ${issued.actor.name} — shown once</h4>
    <p>Username <code>${issued.actor.id}</code>, expires ${new Date(issued.expiresAt * 1000 || issued.expiresAt).toLocaleString()}. Copy it now: it is not stored and cannot be shown again.</p>
    <label>Token<textarea readonly rows="3" class="mono" data-testid="issued-token" value=${issued.token}></textarea></label>
    <p>Ready to paste (topics in the actor's own view${issued.namespace ? `; inside the broker under namespace ${issued.namespace}` : ''}):</p>
    <pre data-testid="mosquitto-sub">${sub}</pre>
    <pre data-testid="mosquitto-pub">${pub}</pre>
    <button type="button" onClick=${onClose}>I have copied it</button>
  </div>`;
}

// ------------------------------------------------------------------------------------------------------
// Roles × permissions

function pathOf(world, scopeId) {
  const out = [];
  let s = world.scopes.find((x) => x.id === scopeId);
  while (s && out.length < 100) {
    out.push(s);
    const t = typeOf(world, s);
    if (!s.parentId || (t && t.config && t.config.permissionMode === 'define')) break;
    s = world.scopes.find((x) => x.id === s.parentId);
  }
  return out;
}

function RolesPage({ me }) {
  const tenants = useTenants(me);
  const [tenantId, setTenantId] = useTenantChoice(tenants.data);
  const world = useLoad(async () => {
    if (!tenantId) return null;
    const w = await loadTenant(me, tenantId);
    const q = `?tenantId=${encodeURIComponent(tenantId)}`;
    const [roles, permissions, links, pOverrides, rpOverrides] = await Promise.all([
      listAll(`/v1/roles${q}`), listAll(`/v1/permissions${q}`), listAll(`/v1/role-permissions${q}`),
      listAll(`/v1/scope-overrides/permissions${q}`), listAll(`/v1/scope-overrides/role-permissions${q}`),
    ]);
    return { ...w, roles, permissions, links, pOverrides, rpOverrides };
  }, [tenantId]);
  const [scopeId, setScopeId] = useState('');
  const w = world.data;
  const path = w && scopeId ? pathOf(w, scopeId) : [];
  const onPath = (id) => path.findIndex((s) => s.id === id);
  const roles = w ? w.roles.filter((r) => onPath(r.scopeId) >= 0) : [];
  const perms = w ? w.permissions.filter((p) => onPath(p.scopeId) >= 0) : [];
  const cell = (role, perm) => {
    if (!w.links.some((l) => l.roleId === role.id && l.permissionId === perm.id)) return html`<span class="muted" aria-label="not linked">·</span>`;
    const depth = onPath(perm.scopeId);
    for (let i = 0; i <= depth; i++) {
      const at = path[i].id;
      const o = w.rpOverrides.find((x) => x.childScopeId === at && x.roleId === role.id && x.permissionId === perm.id) || w.pOverrides.find((x) => x.childScopeId === at && x.permissionId === perm.id);
      if (o) return o.state === 'disabled' ? html`<span class="bad">✗ disabled by override at ${path[i].name}</span>` : html`<span class="ok">✓ re-enabled at ${path[i].name}</span>`;
    }
    return html`<span class="ok" aria-label="granted">✓</span>`;
  };
  return html`<h2>Roles & permissions</h2>
    <section class="card">
      <${ErrorBox} error=${tenants.error || world.error} />
      <form class="inline" onSubmit=${(e) => e.preventDefault()}>
        ${tenants.data && html`<${TenantPicker} tenants=${tenants.data} value=${tenantId} onChange=${setTenantId} />`}
        ${w && html`<label>Scope<select value=${scopeId} onChange=${(e) => setScopeId(e.currentTarget.value)}><option value="">— choose a scope —</option>${w.scopes.map((s) => html`<option value=${s.id}>${s.name} (${(typeOf(w, s) || {}).name || s.typeId})</option>`)}</select></label>`}
      </form>
      ${path.length > 0 && html`<p class="muted">Inherited along: ${path.map((s) => s.name).join(' → ')} (up to the nearest define scope)</p>`}
      ${path.length > 0 && (roles.length === 0 || perms.length === 0 ? html`<p>No roles or permissions are visible at this scope.</p>` : html`<div style="overflow:auto"><table aria-label="Roles by permissions">
        <thead><tr><th scope="col">Role \\ permission</th>${perms.map((p) => html`<th scope="col" class="mono">${p.key}</th>`)}</tr></thead>
        <tbody>${roles.map((r) => html`<tr><th scope="row">${r.name}</th>${perms.map((p) => html`<td>${cell(r, p)}</td>`)}</tr>`)}</tbody></table></div>`)}
    </section>`;
}

// ------------------------------------------------------------------------------------------------------
// Explain

function ExplainPage({ me }) {
  return html`<h2>Explain</h2><div class="grid2"><${MqttExplain} /><${EvaluateExplain} /></div>`;
}

const STEP_TEXT = {
  actor: (s) => `Actor: ${s.detail}`,
  topic_rules: (s) => (s.ok ? `Topic rules: valid, app level "${s.app}"` : `Topic rules: refused (${s.reason})`),
  app_grant: (s) => (s.ok ? `App grant: "${s.app.slug}" (${s.app.mode}) is granted` : `App grant: not granted (granted: ${s.granted.join(', ') || 'none'})`),
  rbac: (s) => (s.skipped ? 'Permission: open app, none needed' : s.ok ? `rbac permission: pattern "${s.pattern}" allows it at ${s.scopeId}` : `rbac permission: no ${s.action} pattern allows it (allowed: ${s.allowedPatterns.join(', ') || 'none'})`),
  namespace: (s) => `Namespace: "${s.namespace || '(project level)'}" → ${s.internalTopic}`,
};

function MqttExplain() {
  const [actorId, setActorId] = useState('');
  const [topic, setTopic] = useState('');
  const [action, setAction] = useState('publish');
  const [answer, setAnswer] = useState(null);
  const { error, busy, run } = useAction();
  return html`<section class="card" aria-labelledby="mx-h"><h3 id="mx-h">May actor A publish or subscribe to topic T?</h3>
    <form class="inline" onSubmit=${(e) => { e.preventDefault(); run(async () => setAnswer(await api('POST', '/v1/mqtt/explain', { actorId, topic, action }))); }}>
      <label>Actor id<input name="mqtt-actor" required value=${actorId} onInput=${(e) => setActorId(e.currentTarget.value)} /></label>
      <label>Topic<input name="mqtt-topic" required value=${topic} onInput=${(e) => setTopic(e.currentTarget.value)} /></label>
      <label>Action<select name="mqtt-action" value=${action} onChange=${(e) => setAction(e.currentTarget.value)}><option value="publish">publish</option><option value="subscribe">subscribe</option></select></label>
      <button class="primary" type="submit" disabled=${busy}>Explain</button>
    </form>
    <${ErrorBox} error=${error} />
    ${answer && html`<div aria-live="polite" data-testid="mqtt-answer">
      <p><span class=${`decision ${answer.decision}`}>${answer.decision}</span> ${answer.reason ? html`<span class="mono">${answer.reason}</span>` : ''}</p>
      <ol class="walk">${answer.steps.map((s) => html`<li class=${s.ok ? 'pass' : 'fail'}><strong>${s.ok ? 'passes' : 'decides: refused'}</strong> — ${STEP_TEXT[s.step] ? STEP_TEXT[s.step](s) : s.step}
        ${s.evaluate && html`<${Walk} decision=${s.evaluate} />`}</li>`)}</ol>
    </div>`}
  </section>`;
}

function EvaluateExplain() {
  const [f, setF] = useState({ subjectId: '', subjectType: 'user', scopeId: '', action: '', resourceType: '', resourceId: '' });
  const [answer, setAnswer] = useState(null);
  const { error, busy, run } = useAction();
  const field = (k, label) => html`<label>${label}<input name=${`eval-${k}`} required=${k !== 'resourceId'} value=${f[k]} onInput=${(e) => setF({ ...f, [k]: e.currentTarget.value })} /></label>`;
  const submit = (e) => {
    e.preventDefault();
    run(async () => setAnswer(await api('POST', '/v1/evaluate?explain=true', { actor: { subjectId: f.subjectId, subjectType: f.subjectType }, scopeId: f.scopeId, action: f.action, resource: { resourceType: f.resourceType, ...(f.resourceId ? { resourceId: f.resourceId } : {}) } })));
  };
  return html`<section class="card" aria-labelledby="ev-h"><h3 id="ev-h">May subject S do A on R at scope X?</h3>
    <form class="inline" onSubmit=${submit}>
      ${field('subjectId', 'Subject id')}
      <label>Subject type<select name="eval-subjectType" value=${f.subjectType} onChange=${(e) => setF({ ...f, subjectType: e.currentTarget.value })}><option value="user">user</option><option value="actor">actor</option></select></label>
      ${field('scopeId', 'Scope id')}${field('action', 'Action')}${field('resourceType', 'Resource type')}${field('resourceId', 'Resource id (optional)')}
      <button class="primary" type="submit" disabled=${busy}>Explain</button>
    </form>
    <${ErrorBox} error=${error} />
    ${answer && html`<div aria-live="polite"><p><span class=${`decision ${answer.decision}`}>${answer.decision}</span> ${answer.reason || ''}</p><${Walk} decision=${answer} /></div>`}
  </section>`;
}

/** The walk up the tree, one step per scope from the target to the boundary, with the grants considered there. */
function Walk({ decision }) {
  const trace = decision.trace || [];
  return html`<ol class="walk" aria-label="Walk up the scope tree">${decision.path.map((scopeId, i) => {
    const here = trace.filter((t) => t.membershipScopeId === scopeId);
    const applies = here.some((t) => t.result === 'applies');
    return html`<li class=${applies ? 'pass' : ''}><span class="mono">${scopeId}</span> ${i === 0 ? '(target)' : ''}${i === decision.path.length - 1 ? ' (boundary)' : ''}
      ${here.length === 0 ? html`<div class="muted">no membership of the subject here</div>` : html`<ul>${here.map((t) => html`<li>${t.roleId ? html`role <span class="mono">${t.roleId}</span>` : 'membership'} ${t.permissionKey ? html`· <span class="mono">${t.permissionKey}</span>` : ''} → <span class=${t.result === 'applies' ? 'ok' : 'bad'}>${t.result === 'applies' ? 'applies' : t.reason}</span>${t.overrideScopeId ? ` (override at ${t.overrideScopeId})` : ''}</li>`)}</ul>`}
    </li>`;
  })}</ol>
  ${decision.grant && html`<p>Decided by role <strong>${decision.grant.roleName}</strong> with <span class="mono">${decision.grant.permissionKey}</span>.</p>`}`;
}

// ------------------------------------------------------------------------------------------------------
// Live sessions

function SessionsPage({ me }) {
  const [filter, setFilter] = useState('');
  const [live, setLive] = useState(true);
  const [tick, setTick] = useState(0);
  const sessions = useLoad(() => api('GET', '/v1/sessions?limit=1000'), [tick]);
  const act = useAction();
  useEffect(() => {
    if (!live) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), 1000);
    return () => clearInterval(t);
  }, [live]);
  const rows = (sessions.data ? sessions.data.data : []).filter((s) => !filter || [s.actorId, s.clientId, s.tenantId, s.accessScopeId || ''].some((v) => v.includes(filter)));
  return html`<h2>Live sessions</h2>
    <section class="card">
      <form class="inline" onSubmit=${(e) => e.preventDefault()}>
        <label>Filter (actor, client id, tenant, scope)<input name="session-filter" value=${filter} onInput=${(e) => setFilter(e.currentTarget.value)} /></label>
        <label class="check"><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.currentTarget.checked)} /> Refresh every second</label>
      </form>
      <${ErrorBox} error=${sessions.error || act.error} />
      <p class="muted" aria-live="polite">${rows.length} live session${rows.length === 1 ? '' : 's'}</p>
      <table data-testid="sessions"><thead><tr><th scope="col">Actor</th><th scope="col">Client id</th><th scope="col">Scope</th><th scope="col">Broker</th><th scope="col">Since</th><th scope="col">Subscriptions (client view)</th><th scope="col">Action</th></tr></thead>
      <tbody>${rows.map((s) => html`<tr data-session=${s.sessionId}>
        <td class="mono">${s.actorId}</td><td class="mono">${s.clientId}</td><td class="mono">${s.accessScopeId || '(project)'}</td>
        <td class="mono">${s.brokerId}</td><td>${new Date(s.connectedAt).toLocaleTimeString()} <span class="muted">${s.state}</span></td>
        <td class="mono" data-testid="subscriptions">${s.subscriptions.length ? s.subscriptions.join(', ') : html`<span class="muted">none</span>`}</td>
        <td><button type="button" class="danger" aria-label=${`Disconnect ${s.clientId}`} onClick=${() => act.run(async () => { await api('POST', `/v1/sessions/${encodeURIComponent(s.sessionId)}/disconnect`); setTick((n) => n + 1); })}>Disconnect</button></td>
      </tr>`)}</tbody></table>
    </section>`;
}

// ------------------------------------------------------------------------------------------------------
// Audit log

/** The audit filters as GET /v1/audit's query (the server filters; datetime-local is the browser's time zone). */
function auditQuery(f, before) {
  const q = new URLSearchParams({ limit: '200' });
  if (f.tenantId) q.set('tenantId', f.tenantId);
  if (f.who.trim()) q.set('principal', f.who.trim());
  if (f.what.trim()) q.set('action', f.what.trim());
  for (const k of ['since', 'until']) {
    const t = f[k] ? new Date(f[k]) : null;
    if (t && !Number.isNaN(t.getTime())) q.set(k, t.toISOString());
  }
  if (before) q.set('before', String(before));
  return `/v1/audit?${q}`;
}

/** The records an entry wrote, a moved scope as "id: parent old → new". */
function recordsOf(entry) {
  const before = new Map((entry.before || []).filter((r) => r && r.id).map((r) => [r.id, r]));
  const ids = [...new Set([...(entry.after || []), ...(entry.before || [])].map((r) => r && r.id).filter(Boolean))];
  return ids.slice(0, 4).map((id) => {
    const old = before.get(id);
    const now = (entry.after || []).find((r) => r && r.id === id);
    return old && now && old.kind === 'scope' && old.parentId !== now.parentId ? `${id}: parent ${old.parentId} → ${now.parentId}` : id;
  }).join(', ');
}

function AuditPage({ me }) {
  const tenants = useTenants(me);
  const empty = { who: '', what: '', tenantId: '', since: '', until: '' };
  const [f, setF] = useState(empty);
  // Filters apply when the form is submitted (each one is a server-side query), and page by page after that.
  const [applied, setApplied] = useState({ filters: empty, before: null });
  const [live, setLive] = useState(false);
  const [tick, setTick] = useState(0);
  const entries = useLoad(() => api('GET', auditQuery(applied.filters, applied.before)), [applied, tick]);
  useEffect(() => {
    if (!live) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), 2000);
    return () => clearInterval(t);
  }, [live]);
  const rows = entries.data ? entries.data.data : [];
  const nextBefore = entries.data ? entries.data.nextBefore : null;
  const input = (k, label, type = 'text', hint) => html`<label>${label}<input type=${type} name=${`audit-${k}`} value=${f[k]} placeholder=${hint || ''} onInput=${(e) => setF({ ...f, [k]: e.currentTarget.value })} /></label>`;
  return html`<h2>Audit log</h2>
    <section class="card">
      <form class="inline" aria-label="Audit filters" onSubmit=${(e) => { e.preventDefault(); setApplied({ filters: { ...f }, before: null }); }}>
        ${input('who', 'Who (principal)', 'text', 'admin or key id')}${input('what', 'What (action)', 'text', 'e.g. access_scope.*')}
        ${tenants.data && html`<label>Tenant<select name="audit-tenant" value=${f.tenantId} onChange=${(e) => setF({ ...f, tenantId: e.currentTarget.value })}><option value="">all visible</option>${tenants.data.map((t) => html`<option value=${t.id}>${t.name}</option>`)}</select></label>`}
        ${input('since', 'Since', 'datetime-local')}${input('until', 'Until', 'datetime-local')}
        <button class="primary" type="submit">Apply filters</button>
        <button type="button" onClick=${() => { setF(empty); setApplied({ filters: empty, before: null }); }}>Clear</button>
        <label class="check"><input type="checkbox" checked=${live} onChange=${(e) => setLive(e.currentTarget.checked)} /> Live tail</label>
      </form>
      <${ErrorBox} error=${entries.error} />
      <p class="muted" aria-live="polite" data-testid="audit-count">${rows.length} entr${rows.length === 1 ? 'y' : 'ies'}${applied.before ? ` older than #${applied.before}` : ''}</p>
      <table data-testid="audit"><thead><tr><th scope="col">Seq</th><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">Tenants</th><th scope="col">Records</th></tr></thead>
      <tbody>${rows.map((e) => html`<tr><td>${e.seq}</td><td>${new Date(e.at).toLocaleString()}</td><td class="mono">${e.principal}</td><td class="mono">${e.action}</td><td class="mono">${(e.tenantIds || []).join(', ')}</td>
        <td class="mono">${recordsOf(e)}</td></tr>`)}</tbody></table>
      <p>${applied.before && html`<button type="button" onClick=${() => setApplied({ ...applied, before: null })}>Newest</button>`}
        ${nextBefore !== null && html` <button type="button" onClick=${() => setApplied({ ...applied, before: nextBefore })}>Older entries</button>`}</p>
    </section>`;
}

// ------------------------------------------------------------------------------------------------------
// Shell

function App() {
  const [me, setMe] = useState(null);
  const [checked, setChecked] = useState(false);
  const route = useHashRoute();
  const mainRef = useRef();
  useEffect(() => {
    if (!token.get()) { setChecked(true); return; }
    api('GET', '/v1/whoami').then(setMe, () => token.clear()).finally(() => setChecked(true));
  }, []);
  useEffect(() => { mainRef.current && mainRef.current.focus(); }, [route[0]]);
  if (!checked) return null;
  if (!me) return html`<${SignIn} onSignedIn=${setMe} />`;
  const page = route[0];
  const signOut = () => { token.clear(); sessionStorage.removeItem('scopegate.console.tenant'); setMe(null); location.hash = ''; };
  const Page = { tree: TreePage, project: ProjectPage, roles: RolesPage, explain: ExplainPage, sessions: SessionsPage, audit: AuditPage }[page] || TreePage;
  return html`<a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); mainRef.current.focus(); }}>Skip to content</a>
    <header class="top"><h1>ScopeGate console</h1>
      <nav aria-label="Sections"><ul>${PAGES.map(([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${page === id ? 'page' : undefined}>${label}</a></li>`)}</ul></nav>
      <span class="who">${me.kind === 'root' ? 'Admin (root)' : `API key ${me.id} · ${me.scopeName || me.scopeId}`}</span>
      <button type="button" onClick=${signOut}>Sign out</button>
    </header>
    <main id="main" tabindex="-1" ref=${mainRef}><${Page} me=${me} route=${route} /></main>`;
}

render(html`<${App} />`, document.getElementById('root'));
