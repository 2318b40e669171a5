#!/usr/bin/env bash
# What a new user does: clone, `make run`, use the API and the Temporal UI, Ctrl-C.
# Uses the default ports (8000, 8233, 7233, 55432, 8025): run it on a machine where they are free.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone --quiet "$repo" "$work/iaf"
cd "$work/iaf"

setsid make run > run.log 2>&1 &
leader=$!
stop() { kill -INT -- "-$leader" 2>/dev/null || true; wait "$leader" 2>/dev/null || true; }
trap 'stop; rm -rf "$work"' EXIT

started=$(date +%s)
until curl -fsS http://127.0.0.1:8000/healthz 2>/dev/null | grep -q '"status":"ok"'; do
  if ! kill -0 "$leader" 2>/dev/null; then echo "make run exited early"; tail -50 run.log; exit 1; fi
  if (( $(date +%s) - started > 1800 )); then echo "not healthy after 30 min"; tail -50 run.log; exit 1; fi
  sleep 2
done
echo "healthy after $(( $(date +%s) - started )) s (install included)"
curl -fsS http://127.0.0.1:8233/ | grep -qi '<html' && echo "Temporal UI answers on :8233"
token=$(curl -fsS -X POST http://127.0.0.1:8000/api/auth/signup -H 'content-type: application/json' \
  -d '{"email":"new.user@example.com","password":"a long password","name":"New User"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
room=$(curl -fsS -X POST http://127.0.0.1:8000/api/chat/rooms -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"name":"first room"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -fsS -X POST "http://127.0.0.1:8000/api/chat/rooms/$room/messages" -H "authorization: Bearer $token" \
  -H 'content-type: application/json' -d '{"content":"@architect how should we structure the API?"}' > /dev/null
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:8000/api/chat/rooms/$room/messages" -H "authorization: Bearer $token" \
     | grep -q '"sender_agent_id":"architect"'; then echo "@architect answered"; break; fi
  sleep 1
done
stop
grep -q "Stopped." run.log && echo "Ctrl-C stopped everything"
