#!/usr/bin/env bash
# The agents pattern end to end, as one script that runs against `npm start`: orchestrators and workers in two
# tenants' scopes, a worker pool over a shared subscription ($share/workers/...), and an agent acting on behalf
# of a user (delegation grant, RFC 8693 token, evaluate and AuthZEN). Every step checks its answer and the
# script stops at the first surprise.
#
#   AUTHZ_ADMIN_TOKEN=<printed by npm start> bash scripts/agents.sh
#
# Environment: AUTHZ_ADMIN_TOKEN (required), SIDECAR_URL (default http://127.0.0.1:8080), MQTT_HOST
# (default 127.0.0.1), MQTT_PORT (default 1883), SUFFIX (slug suffix; default: the time). Needs mosquitto-clients.
# ALICE_IDP_TOKEN (optional): a JWT of the identity provider the sidecar trusts (TRUSTED_JWT_ISSUER), whose `sub`
# is ALICE_KINDE_ID; alice then grants and revokes the delegation herself. Without it the admin does.
set -euo pipefail

: "${AUTHZ_ADMIN_TOKEN:?set AUTHZ_ADMIN_TOKEN to the admin token npm start printed}"
BASE="${SIDECAR_URL:-http://127.0.0.1:8080}"
API="$BASE/v1"
MQTT_HOST="${MQTT_HOST:-127.0.0.1}"
MQTT_PORT="${MQTT_PORT:-1883}"
SUFFIX="${SUFFIX:-$(date +%s)}"
H="Authorization: Bearer $AUTHZ_ADMIN_TOKEN"
M=(-h "$MQTT_HOST" -p "$MQTT_PORT")

# post URL JSON → the response body; stops on an HTTP error, showing the error body. (H: the bearer header.)
post() {
  local out status
  out=$(curl -sS -X POST "$1" -H "$H" -H 'content-type: application/json' -d "$2" -w '\n%{http_code}')
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "${status:0:1}" != 2 ]; then echo "agents: POST $1 answered $status: $out" >&2; exit 1; fi
  printf '%s' "$out"
}
# del URL → the response body, with the bearer header H; stops on an HTTP error.
del() {
  local out status
  out=$(curl -sS -X DELETE "$1" -H "$H" -w '\n%{http_code}')
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "${status:0:1}" != 2 ]; then echo "agents: DELETE $1 answered $status: $out" >&2; exit 1; fi
  printf '%s' "$out"
}
# as TOKEN CMD ARGS…: runs post/del with another bearer (bash locals are seen by the functions called).
as() { local H="Authorization: Bearer $1"; shift; "$@"; }
field() { node -e 'const j = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); if (v === undefined) process.exit(1); console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1" "$2"; }
step() { printf '\n== %s\n' "$*"; }
expect() { [ "$1" = "$2" ] || { echo "agents: expected '$2', got '$1' ($3)" >&2; exit 1; }; }

step "A project with two tenants' scopes (acme, beta) and an open app 'agents'"
T=$(post "$API/tenants" "{\"name\":\"Agents Inc\",\"slug\":\"agents-$SUFFIX\"}")
TID=$(field "$T" j.id)
W=$(post "$API/workspaces" "{\"tenantId\":\"$TID\",\"name\":\"Main\"}")
PID=$(field "$(post "$API/projects" "{\"workspaceId\":\"$(field "$W" j.id)\",\"name\":\"Agents\"}")" j.id)
P="$API/organizations/$TID/projects/$PID"
ACME=$(field "$(post "$P/scopes" '{"slug":"acme","name":"Acme"}')" j.accessScopeId)
BETA=$(field "$(post "$P/scopes" '{"slug":"beta","name":"Beta"}')" j.accessScopeId)
APP=$(field "$(post "$P/apps" '{"slug":"agents","name":"Agents","mode":"open"}')" j.appId)
# actor NAME SCOPE → "actorId subjectId token" (an agent in the scope, granted the app, with a JWT)
actor() {
  local a id
  a=$(post "$P/actors" "{\"name\":\"$1\",\"accessScopeId\":\"$2\",\"kind\":\"agent\"}")
  id=$(field "$a" j.actorId)
  post "$P/apps/$APP/actors" "{\"actorId\":\"$id\"}" >/dev/null
  echo "$id $(field "$a" j.subjectId) $(field "$(post "$P/actors/$id/tokens" '{}')" j.token)"
}
read -r ORCH _ ORCH_T <<<"$(actor acme-orchestrator "$ACME")"
read -r W1 W1_S W1_T <<<"$(actor acme-worker-1 "$ACME")"
read -r W2 _ W2_T <<<"$(actor acme-worker-2 "$ACME")"
read -r BORCH _ BORCH_T <<<"$(actor beta-orchestrator "$BETA")"
read -r BW _ BW_T <<<"$(actor beta-worker "$BETA")"
echo "   acme: orchestrator $ORCH, workers $W1 $W2; beta: orchestrator $BORCH, worker $BW"

step "A worker pool: \$share/workers/agents/_handoff/dispatch, one worker per task, round robin"
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
mosquitto_sub "${M[@]}" -u "$W1" -P "$W1_T" -t '$share/workers/agents/_handoff/dispatch' -q 1 -v >"$out/w1" &
mosquitto_sub "${M[@]}" -u "$W2" -P "$W2_T" -t '$share/workers/agents/_handoff/dispatch' -q 1 -v >"$out/w2" &
mosquitto_sub "${M[@]}" -u "$BW" -P "$BW_T" -t '$share/workers/agents/_handoff/dispatch' -q 1 -v >"$out/bw" &
# mosquitto_sub says nothing once subscribed: send warm-ups until both Acme workers have one.
for _ in $(seq 1 50); do
  mosquitto_pub "${M[@]}" -u "$ORCH" -P "$ORCH_T" -t agents/_handoff/dispatch -q 1 -m warmup
  [ -s "$out/w1" ] && [ -s "$out/w2" ] && break
  sleep 0.2
done
for i in 1 2 3 4; do mosquitto_pub "${M[@]}" -u "$ORCH" -P "$ORCH_T" -t agents/_handoff/dispatch -q 1 -m "acme-task-$i"; done
mosquitto_pub "${M[@]}" -u "$BORCH" -P "$BORCH_T" -t agents/_handoff/dispatch -q 1 -m beta-task-1
for _ in $(seq 1 50); do
  [ "$(cat "$out/w1" "$out/w2" | grep -c acme-task)" = 4 ] && grep -q beta-task "$out/bw" && break
  sleep 0.1
done
echo "   worker 1 got: $(grep -o 'acme-task-[0-9]' "$out/w1" | tr '\n' ' ')"
echo "   worker 2 got: $(grep -o 'acme-task-[0-9]' "$out/w2" | tr '\n' ' ')"
echo "   beta worker got: $(grep -o '[a-z]*-task-[0-9]' "$out/bw" | tr '\n' ' ')"
expect "$(cat "$out/w1" "$out/w2" | grep -o 'acme-task-[0-9]' | sort -u | wc -l | tr -d ' ')" 4 "each Acme task reached the pool"
expect "$(cat "$out/w1" "$out/w2" | grep -c 'acme-task')" 4 "each Acme task reached exactly one worker"
expect "$(grep -c 'acme-task' "$out/w1")" 2 "round robin: worker 1 got half"
expect "$(grep -o '[a-z]*-task-[0-9]' "$out/bw" | tr '\n' ' ')" "beta-task-1 " "Beta's group 'workers' is its own"
expect "$(head -1 "$out/w1" | cut -d' ' -f1)" "agents/_handoff/dispatch" "workers see their own view"

step "An agent acting for a user: alice may publish agents/tasks/#, worker 1 anything in agents/#"
ALICE_KINDE_ID="${ALICE_KINDE_ID:-kp_alice_$SUFFIX}"
ALICE=$(field "$(post "$API/users" "{\"kindeId\":\"$ALICE_KINDE_ID\",\"email\":\"alice-$SUFFIX@acme.example\",\"defaultTenantId\":\"$TID\"}")" j.subjectId)
# Who grants (and later revokes): alice herself with her identity provider's JWT, or else the admin.
GRANTOR="${ALICE_IDP_TOKEN:-$AUTHZ_ADMIN_TOKEN}"
[ -n "${ALICE_IDP_TOKEN:-}" ] && echo "   alice grants with her own identity provider token" || echo "   the admin grants (set ALICE_IDP_TOKEN for alice to do it herself)"
# topics SUBJECT PATTERN: a role at acme with publish + subscribe on the pattern, given to the subject.
topics() {
  local role perm m
  role=$(field "$(post "$API/roles" "{\"scopeId\":\"$ACME\",\"name\":\"topics $2 $RANDOM\"}")" j.id)
  for action in publish subscribe; do
    perm=$(field "$(post "$API/permissions" "{\"scopeId\":\"$ACME\",\"action\":\"$action\",\"resourceType\":\"topic\",\"resourcePattern\":\"$2\"}")" j.id)
    post "$API/role-permissions" "{\"roleId\":\"$role\",\"permissionId\":\"$perm\"}" >/dev/null
  done
  m=$(field "$(post "$API/memberships" "{\"subjectId\":\"$1\",\"scopeId\":\"$ACME\"}")" j.id)
  post "$API/role-assignments" "{\"roleId\":\"$role\",\"membershipId\":\"$m\"}" >/dev/null
}
topics "$ALICE" 'agents/tasks/#'
topics "$W1_S" 'agents/#'
# Without a delegation grant there is no token on alice's behalf.
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$P/actors/$W1/tokens" -H "$H" -H 'content-type: application/json' -d "{\"onBehalfOf\":{\"subjectId\":\"$ALICE\"}}")
expect "$status" 403 "no token without a delegation grant"
G=$(as "$GRANTOR" post "$P/actors/$W1/delegations" "{\"subjectId\":\"$ALICE\",\"expiresInSeconds\":3600}")
echo "   delegation grant $(field "$G" j.id) until $(field "$G" j.expiresAt), created by $(field "$G" j.createdBy)"
OBO=$(post "$P/actors/$W1/tokens" "{\"onBehalfOf\":{\"subjectId\":\"$ALICE\"}}")
OBO_T=$(field "$OBO" j.token)
CLAIMS=$(node -pe 'JSON.stringify((({sub, act}) => ({sub, act}))(JSON.parse(Buffer.from(process.argv[1].split(".")[1], "base64url"))))' "$OBO_T")
echo "   token claims: $CLAIMS"
expect "$CLAIMS" "{\"sub\":\"$ALICE\",\"act\":{\"sub\":\"$W1\"}}" "RFC 8693 sub/act"

# Over MQTT the username stays the agent's actorId; the session may do only what both may.
mosquitto_sub "${M[@]}" -u "$ORCH" -P "$ORCH_T" -t 'agents/tasks/#' -v -C 1 -W 10 >"$out/watch" &
for _ in $(seq 1 50); do
  mosquitto_pub "${M[@]}" -u "$W1" -P "$OBO_T" -t agents/tasks/42 -q 1 -m "done for alice"
  [ -s "$out/watch" ] && break
  sleep 0.2
done
expect "$(cat "$out/watch")" "agents/tasks/42 done for alice" "a publish inside both sides' topics"

# evaluate and AuthZEN answer the same: agents/tasks/42 yes, agents/_handoff/dispatch no (alice may not).
decide() {
  post "$BASE/access/v1/evaluation" "{\"subject\":{\"type\":\"agent\",\"id\":\"$W1\"},\"action\":{\"name\":\"publish\"},\"resource\":{\"type\":\"topic\",\"id\":\"$1\",\"properties\":{\"scopeId\":\"$ACME\"}},\"context\":{\"onBehalfOf\":\"$ALICE\"}}"
}
D1=$(decide agents/tasks/42); D2=$(decide agents/_handoff/dispatch)
echo "   AuthZEN publish agents/tasks/42 on behalf of alice:         $D1"
echo "   AuthZEN publish agents/_handoff/dispatch on behalf of alice: $D2"
expect "$(field "$D1" j.decision)" true "inside both"
expect "$(field "$D2" j.decision)" false "outside alice's topics"
E=$(post "$API/evaluate?explain=true" "{\"actor\":{\"subjectId\":\"$W1_S\",\"subjectType\":\"actor\"},\"onBehalfOf\":{\"subjectId\":\"$ALICE\"},\"scopeId\":\"$ACME\",\"action\":\"publish\",\"resource\":{\"resourceType\":\"topic\",\"resourceId\":\"agents/_handoff/dispatch\"}}")
echo "   evaluate explain: agent $(field "$E" j.delegation.agent.decision), principal $(field "$E" j.delegation.principal.decision) → $(field "$E" j.decision)"
expect "$(field "$E" j.delegation.principal.decision)" DENIED "explain shows the principal's side"

step "The grantor revokes the grant: the delegated token no longer connects"
GID=$(field "$G" j.id)
expect "$(field "$(as "$GRANTOR" del "$P/actors/$W1/delegations/$GID")" 'j.deleted[0].id')" "$GID" "revoked"
if mosquitto_pub "${M[@]}" -u "$W1" -P "$OBO_T" -t agents/tasks/43 -q 1 -m late 2>"$out/refused"; then
  echo "agents: the delegated token still connected after the revoke" >&2; exit 1
fi
echo "   mosquitto_pub with the delegated token: $(head -1 "$out/refused")"

printf '\nDone: every answer was the one expected.\n'
