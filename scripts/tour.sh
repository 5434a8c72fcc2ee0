#!/usr/bin/env bash
# The two-minute tour, as one script that runs: seed 001 (a tenant's tree, roles, permissions, a user, an
# override, decisions) and seed 000 (customers as access scopes, an actor, an app, a token, MQTT), against a
# running `npm start`. Every step checks its answer and the script stops at the first surprise.
#
#   AUTHZ_ADMIN_TOKEN=<printed by npm start> bash scripts/tour.sh
#
# Environment: AUTHZ_ADMIN_TOKEN (required), SIDECAR_URL (default http://127.0.0.1:8080), MQTT_HOST
# (default 127.0.0.1), MQTT_PORT (default 1883), SUFFIX (slug suffix; default: the time, so it can run again).
set -euo pipefail

: "${AUTHZ_ADMIN_TOKEN:?set AUTHZ_ADMIN_TOKEN to the admin token npm start printed}"
API="${SIDECAR_URL:-http://127.0.0.1:8080}/v1"
MQTT_HOST="${MQTT_HOST:-127.0.0.1}"
MQTT_PORT="${MQTT_PORT:-1883}"
SUFFIX="${SUFFIX:-$(date +%s)}"
H="Authorization: Bearer $AUTHZ_ADMIN_TOKEN"

# post PATH JSON → prints the response body; stops the tour on an HTTP error, showing the error body.
post() {
  local out status
  out=$(curl -sS -X POST "$API$1" -H "$H" -H 'content-type: application/json' -d "$2" -w '\n%{http_code}')
  status=${out##*$'\n'}
  out=${out%$'\n'*}
  if [ "${status:0:1}" != 2 ]; then
    echo "tour: POST $1 answered $status: $out" >&2
    exit 1
  fi
  printf '%s' "$out"
}
# field JSON EXPR → one value out of a JSON document (EXPR is JavaScript over `j`), e.g. field "$T" j.id
field() { node -e 'const j = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); if (v === undefined) process.exit(1); console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1" "$2"; }
step() { printf '\n== %s\n' "$*"; }
# decide SUBJECT SCOPE ACTION RESOURCETYPE EXPECTED → evaluates, prints the answer, stops when it differs
decide() {
  local d
  d=$(post /evaluate "{\"actor\":{\"subjectId\":\"$1\",\"subjectType\":\"user\"},\"scopeId\":\"$2\",\"action\":\"$3\",\"resource\":{\"resourceType\":\"$4\"}}")
  local got; got=$(field "$d" j.decision)
  printf '   %-8s %-12s at %-40s → %s%s\n' "$3" "$4" "$2" "$got" "$( [ "$got" = DENIED ] && echo " ($(field "$d" j.reason))" || true)"
  [ "$got" = "$5" ] || { echo "tour: expected $5" >&2; exit 1; }
}

step "Seed 001: a tenant, its workspace, a project and two environments"
T=$(post /tenants "{\"name\":\"Acme Corp\",\"slug\":\"acme-$SUFFIX\",\"maxUsers\":50}")
TID=$(field "$T" j.id)
W=$(post /workspaces "{\"tenantId\":\"$TID\",\"name\":\"Engineering\"}")
# The tenant is implied by the workspace (and by the project for environments).
P=$(post /projects "{\"workspaceId\":\"$(field "$W" j.id)\",\"name\":\"API Service\"}")
PID=$(field "$P" j.id); PSCOPE=$(field "$P" j.scopeId)
PROD=$(field "$(post /environments "{\"projectId\":\"$PID\",\"name\":\"Production\"}")" j.scopeId)
STAGING=$(field "$(post /environments "{\"projectId\":\"$PID\",\"name\":\"Staging\"}")" j.scopeId)
echo "   tenant $TID, project $PID (scope $PSCOPE), Production $PROD, Staging $STAGING"

step "Roles and permissions, defined at the project (batches are JSON arrays)"
R=$(post /roles/batch "[{\"name\":\"Admin\",\"scopeId\":\"$PSCOPE\"},{\"name\":\"Developer\",\"scopeId\":\"$PSCOPE\"}]")
ADMIN=$(field "$R" 'j.data[0].id'); DEV=$(field "$R" 'j.data[1].id')
PM=$(post /permissions/batch "[
  {\"scopeId\":\"$PSCOPE\",\"action\":\"read\",\"resourceType\":\"*\",\"resourcePattern\":\"*\",\"key\":\"*:read:*\"},
  {\"scopeId\":\"$PSCOPE\",\"action\":\"write\",\"resourceType\":\"*\",\"resourcePattern\":\"*\",\"key\":\"*:write:*\"},
  {\"scopeId\":\"$PSCOPE\",\"action\":\"deploy\",\"resourceType\":\"environment\",\"resourcePattern\":\"*\",\"key\":\"environment:deploy:*\"}]")
READ=$(field "$PM" 'j.data[0].id'); WRITE=$(field "$PM" 'j.data[1].id'); DEPLOY=$(field "$PM" 'j.data[2].id')
post /role-permissions/batch "[{\"roleId\":\"$ADMIN\",\"permissionId\":\"$READ\"},{\"roleId\":\"$ADMIN\",\"permissionId\":\"$WRITE\"},{\"roleId\":\"$ADMIN\",\"permissionId\":\"$DEPLOY\"},
  {\"roleId\":\"$DEV\",\"permissionId\":\"$READ\"},{\"roleId\":\"$DEV\",\"permissionId\":\"$WRITE\"},{\"roleId\":\"$DEV\",\"permissionId\":\"$DEPLOY\"}]" >/dev/null
echo "   roles Admin, Developer; permissions read, write, deploy; both roles linked to all three"

step "Jane, a user (kindeId = her identity provider's id), becomes a Developer of the project"
U=$(post /users "{\"kindeId\":\"kp_jane_$SUFFIX\",\"email\":\"jane.$SUFFIX@acme.example\",\"firstName\":\"Jane\",\"defaultTenantId\":\"$TID\"}")
JANE=$(field "$U" j.subjectId)
M=$(post /memberships "{\"subjectId\":\"$JANE\",\"scopeId\":\"$PSCOPE\"}")
post /role-assignments "{\"roleId\":\"$DEV\",\"membershipId\":\"$(field "$M" j.id)\"}" >/dev/null
echo "   Jane is $JANE, member of the project with the Developer role"

step "An override: Developers may not deploy in Production (the project's other environments keep it)"
post /scope-overrides/role-permissions "{\"childScopeId\":\"$PROD\",\"roleId\":\"$DEV\",\"permissionId\":\"$DEPLOY\",\"state\":\"disabled\"}" >/dev/null

step "Decisions (POST /v1/evaluate; add ?explain=true for the whole walk up the tree)"
decide "$JANE" "$PSCOPE" read document ALLOWED
decide "$JANE" "$STAGING" deploy environment ALLOWED
decide "$JANE" "$PROD" deploy environment DENIED
decide "$JANE" "$PROD" write document ALLOWED

step "Seed 000: the project's customers as access scopes, an actor, an open app, a token"
ORG="/organizations/$TID/projects/$PID"
CUST=$(field "$(post "$ORG/scopes" '{"slug":"customer-a","name":"Customer A"}')" j.accessScopeId)
OTHER=$(field "$(post "$ORG/scopes" '{"slug":"customer-b","name":"Customer B"}')" j.accessScopeId)
APP=$(field "$(post "$ORG/apps" '{"slug":"my-app","name":"My App"}')" j.appId)
ALICE=$(field "$(post "$ORG/actors" "{\"name\":\"sensor-a\",\"kind\":\"device\",\"accessScopeId\":\"$CUST\"}")" j.actorId)
BOB=$(field "$(post "$ORG/actors" "{\"name\":\"sensor-b\",\"kind\":\"device\",\"accessScopeId\":\"$OTHER\"}")" j.actorId)
post "$ORG/apps/$APP/actors" "{\"actorId\":\"$ALICE\"}" >/dev/null
post "$ORG/apps/$APP/actors" "{\"actorId\":\"$BOB\"}" >/dev/null
ALICE_TOKEN=$(field "$(post "$ORG/actors/$ALICE/tokens" '{}')" j.token)
BOB_TOKEN=$(field "$(post "$ORG/actors/$BOB/tokens" '{}')" j.token)
echo "   customer-a: actor $ALICE; customer-b: actor $BOB; both granted app my-app"

if command -v mosquitto_sub >/dev/null 2>&1; then
  step "MQTT: both write my-app/chat/messages; each customer hears only its own"
  received=$(mktemp)
  mosquitto_sub -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$ALICE" -P "$ALICE_TOKEN" -i "alice-$SUFFIX" -t 'my-app/chat/messages' -v -C 1 -W 10 >"$received" &
  sub=$!
  # mosquitto_sub says nothing when its subscription is in place: publish Bob's message first, then Alice's
  # until hers arrives. -C 1 stops at the first message, so Bob's would be the one shown if it crossed over.
  mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$BOB" -P "$BOB_TOKEN" -t 'my-app/chat/messages' -m 'from customer-b'
  for _ in $(seq 1 50); do
    [ -s "$received" ] && break
    mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$BOB" -P "$BOB_TOKEN" -t 'my-app/chat/messages' -m 'from customer-b'
    mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -u "$ALICE" -P "$ALICE_TOKEN" -t 'my-app/chat/messages' -m 'from customer-a'
    sleep 0.2
  done
  wait "$sub" || true
  echo "   customer-a's subscriber got: $(cat "$received")"
  grep -qx 'my-app/chat/messages from customer-a' "$received" || { echo "tour: expected customer-a's own message" >&2; rm -f "$received"; exit 1; }
  rm -f "$received"
else
  step "MQTT (install mosquitto-clients to run this step)"
  echo "   mosquitto_sub -h $MQTT_HOST -p $MQTT_PORT -u '$ALICE' -P '<token>' -t 'my-app/chat/messages' -v"
fi

step "Done: every answer was the one expected"
