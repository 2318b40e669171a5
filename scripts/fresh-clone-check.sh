#!/usr/bin/env bash
# What a new user does: clone, `make run`, use the API and the Temporal UI, Ctrl-C, then a
# second `make run` that still has their data, and Ctrl-C again. Every check that fails stops
# the script with exit 1 and the tail of the run's log.
# Uses the default ports (8000, 8233, 7233, 55432, 8025): run it on a machine where they are free.
set -euo pipefail

API=http://127.0.0.1:8000
UI=http://127.0.0.1:8233
PORTS=(8000 8233 7233 55432 8025)
EMAIL="new.user.$$@example.com"
PASSWORD="a long password"
INSTALL_TIMEOUT=1800 # the first run installs everything (CPU torch included)
START_TIMEOUT=300
REPLY_TIMEOUT=120
STOP_TIMEOUT=60

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
log="$work/run.log"
leader=""

fail() {
  echo "FAIL: $*" >&2
  if [[ -f "$log" ]]; then
    echo "---- last 60 lines of the make run log ----" >&2
    tail -n 60 "$log" >&2
    kept="${TMPDIR:-/tmp}/fresh-clone-check.$$.log"
    cp "$log" "$kept" && echo "---- whole log kept in $kept" >&2
  fi
  exit 1
}

ok() { echo "ok: $*"; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

running() { [[ -n "$leader" ]] && kill -0 "$leader" 2>/dev/null; }

# The process group `make run` leads (setsid): everything it started, unless a child escaped.
group_alive() { [[ -n "$leader" ]] && pgrep -g "$leader" > /dev/null 2>&1; }

cleanup() {
  if group_alive; then
    kill -INT -- "-$leader" 2>/dev/null || true
    sleep 5
    kill -KILL -- "-$leader" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# curl that fails on HTTP errors and says which request it was.
call() {
  local what=$1
  shift
  curl -fsS --max-time 30 "$@" || fail "$what: $*"
}

start_run() {
  echo "---- make run ($1)" >> "$log"
  setsid make run >> "$log" 2>&1 &
  leader=$!
}

wait_healthy() {
  local timeout=$1 started
  started=$(date +%s)
  until [[ "$(curl -fsS --max-time 5 "$API/healthz" 2>/dev/null | json '["status"]' 2>/dev/null)" == ok ]]; do
    running || fail "make run exited before /healthz said ok"
    (($(date +%s) - started < timeout)) || fail "not healthy after $timeout s"
    sleep 2
  done
  ok "healthy after $(($(date +%s) - started)) s"
}

ctrl_c() {
  # What the terminal does on Ctrl-C: SIGINT to the whole foreground process group.
  local stops=$1
  kill -INT -- "-$leader" 2>/dev/null || fail "make run was no longer running at Ctrl-C"
  local waited=0
  while group_alive; do
    ((waited < STOP_TIMEOUT)) || fail "processes still running $STOP_TIMEOUT s after Ctrl-C: $(pgrep -a -g "$leader" | head -5)"
    sleep 1
    waited=$((waited + 1))
  done
  (($(grep -c 'Stopped\.' "$log") >= stops)) || fail "iaf dev did not report Stopped."
  for port in "${PORTS[@]}"; do
    waited=0
    while listening "$port"; do
      ((waited < 15)) || fail "port $port still in use after Ctrl-C"
      sleep 1
      waited=$((waited + 1))
    done
  done
  ok "Ctrl-C stopped every process and freed ports ${PORTS[*]}"
  leader=""
}

for port in "${PORTS[@]}"; do
  listening "$port" && fail "port $port is already in use: this check needs the default ports"
done

git clone --quiet "$repo" "$work/iaf"
cd "$work/iaf"

# ---- first run: install, sign up, talk to an agent, see the workflow in the Temporal UI
start_run "first, with the install"
wait_healthy "$INSTALL_TIMEOUT"

ui=$(call "Temporal UI" "$UI/") || exit 1
grep -qi '<html' <<< "$ui" || fail "the Temporal UI on :8233 did not answer with a page"
ok "Temporal UI answers on :8233"

signup=$(call "sign-up" -X POST "$API/api/auth/signup" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\",\"name\":\"New User\"}") || exit 1
token=$(json '["access_token"]' <<< "$signup") || fail "no access_token in the sign-up answer: $signup"
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
ok "signed up as $EMAIL"

room=$(call "create a room" -X POST "$API/api/chat/rooms" "${auth[@]}" -d '{"name":"first room"}' |
  json '["id"]') || fail "no room id"
message=$(call "post a message" -X POST "$API/api/chat/rooms/$room/messages" "${auth[@]}" \
  -d '{"content":"@architect how should we structure the API?"}' | json '["id"]') ||
  fail "no message id"
ok "posted message $message in room $room"

answered=""
for _ in $(seq 1 "$REPLY_TIMEOUT"); do
  page=$(call "list messages" "$API/api/chat/rooms/$room/messages" "${auth[@]}") || exit 1
  if python3 -c 'import json,sys; sys.exit(0 if any(m.get("sender_agent_id") == "architect" for m in json.load(sys.stdin)["items"]) else 1)' <<< "$page"; then
    answered=yes
    break
  fi
  sleep 1
done
[[ -n "$answered" ]] || fail "@architect did not answer within $REPLY_TIMEOUT s"
ok "@architect answered"

route=$(call "RouteMessage in the Temporal UI" "$UI/api/v1/namespaces/default/workflows/route-$message") || exit 1
[[ "$(json '["workflowExecutionInfo"]["status"]' <<< "$route")" == WORKFLOW_EXECUTION_STATUS_COMPLETED ]] ||
  fail "route-$message is not completed: $route"
ok "route-$message completed, visible through the Temporal UI"

ctrl_c 1

# ---- second run: the same data (PostgreSQL and Temporal's SQLite file under .iaf/)
start_run "second, data kept"
wait_healthy "$START_TIMEOUT"

login=$(call "log in again" -X POST "$API/api/auth/login" -H 'content-type: application/json' \
  -d "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}") || exit 1
token=$(json '["access_token"]' <<< "$login") || fail "no access_token in the login answer: $login"
auth=(-H "authorization: Bearer $token" -H 'content-type: application/json')
ok "the user from the first run logs in again"

page=$(call "messages after the restart" "$API/api/chat/rooms/$room/messages" "${auth[@]}") || exit 1
python3 -c "import json,sys; sys.exit(0 if any(m['id'] == $message for m in json.load(sys.stdin)['items']) else 1)" <<< "$page" ||
  fail "message $message is gone after the restart: $page"
ok "room and messages are still there"

route=$(call "RouteMessage after the restart" "$UI/api/v1/namespaces/default/workflows/route-$message") || exit 1
[[ "$(json '["workflowExecutionInfo"]["status"]' <<< "$route")" == WORKFLOW_EXECUTION_STATUS_COMPLETED ]] ||
  fail "Temporal lost route-$message across the restart: $route"
ok "Temporal kept route-$message across the restart"

ctrl_c 2
echo "fresh clone check passed"
