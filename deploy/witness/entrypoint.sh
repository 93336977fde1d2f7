#!/usr/bin/env bash
# The witness container: make its Ed25519 key once (in its own volume, never in the image
# or the repository), publish its vkey for projections (TL_WITNESS_VKEY_FILE), start an
# ssh-agent holding the key and litewitness on :7380; in the background, register every
# study's ledger: its origin and checkpoint vkeys from projections' public GET /checkpoints
# and, for each study of TL_STUDIES, GET /studies/<id>/checkpoints (as
# deploy/local/witness.sh register does).
set -euo pipefail

STATE=/var/lib/witness
PUBLIC=/var/lib/witness-public
NAME=${TL_WITNESS_NAME:-trial-ledger.local/witness}
PROJECTIONS=${TL_PROJECTIONS_URL:-http://projections:8105}
STUDIES=${TL_STUDIES:-}  # the studies projections serves (the stack's one setting)
SOCK=$STATE/agent.sock

[[ -f $STATE/witness.key ]] || ssh-keygen -q -t ed25519 -N '' -C "$NAME" -f "$STATE/witness.key"
rm -f "$SOCK"
ssh-agent -a "$SOCK" >/dev/null
SSH_AUTH_SOCK=$SOCK ssh-add -q "$STATE/witness.key"
fingerprint=$(ssh-keygen -l -E sha256 -f "$STATE/witness.key.pub" | cut -d' ' -f2)

register_ledger() {  # idempotent; retried until projections answers (it starts after us)
  local published origin vkey known
  until published=$(curl -fsS "$1?limit=1" 2>/dev/null); do sleep 5; done
  origin=$(jq -r .origin <<<"$published")
  known=$(witnessctl list-logs -db "$STATE/litewitness.db")
  grep -qF "\"origin\":\"$origin\"" <<<"$known" \
    || witnessctl add-log -db "$STATE/litewitness.db" -origin "$origin"
  for vkey in $(jq -r '.vkeys[]' <<<"$published"); do
    grep -qF "$vkey" <<<"$known" \
      || witnessctl add-key -db "$STATE/litewitness.db" -origin "$origin" -key "$vkey"
  done
}

register() {  # the first study's ledger (unprefixed), then every served study's
  local study
  register_ledger "$PROJECTIONS/checkpoints"
  for study in ${STUDIES//,/ }; do
    register_ledger "$PROJECTIONS/studies/$study/checkpoints"
  done
}
register &

litewitness -listen 0.0.0.0:7380 -name "$NAME" -db "$STATE/litewitness.db" \
  -ssh-agent "$SOCK" -key "$fingerprint" 2> >(tee "$STATE/litewitness.log" >&2) &
witness=$!
vkey=
for _ in $(seq 1 100); do
  vkey=$(grep -o 'vkey=[^ ]*' "$STATE/litewitness.log" 2>/dev/null | tail -n 1 | cut -d= -f2- | tr -d '"') || true
  [[ -n ${vkey:-} ]] && break
  sleep 0.1
done
[[ -n $vkey ]] || { echo "litewitness logged no verifier key" >&2; exit 1; }
printf "%s\n" "$vkey" >"$PUBLIC/witness.vkey"
wait "$witness"
