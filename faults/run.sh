#!/usr/bin/env bash
# faults/run.sh: the fault suite on real processes, on loopback (package faults, command cmd/sse-faults).
#
#	faults/run.sh                                   # short form (CI): seed 1, each short fault once, then 3 at once
#	faults/run.sh -faults all -duration 30m -seed 7 # long form: every fault once, then random ones, single and
#	                                                # mixed, until 30m have passed
#	faults/run.sh -faults caddy-kill,partition -mixed=false   # some faults only (go run ./cmd/sse-faults -list)
#
# It builds a Caddy with the module, nats-server (the version go.mod pins, from the module cache) and
# sse-faults, then runs sse-faults: 3 nats-servers (JetStream, R3 streams), 2 Caddy nodes behind a Caddy
# load balancer, 200 clients at 100 events/s on /events plus 20 on the KV-style stream (/kv). Flags after the script's name go to sse-faults and override the
# defaults below. Exit status: 0 every client got every event exactly once and in order (or a true reset),
# 3 a promise was broken, 1 the run failed. Everything it starts is stopped when it ends, also on failure,
# timeout or Ctrl-C; sse-faults has its own hard limit (-timeout) and its children die with it.
#
# Results, logs and stores go to FAULTS_OUT (default: a new /tmp/caddy-sse-faults.* directory):
#	result.md  the tables          result.json  everything measured
#	run/       every process's log (nats-n1.log, caddy1.log, lb.log ...) and the stores
# Ports: 127.0.0.1:FAULTS_PORT_BASE (24200) and about 70 above it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${FAULTS_OUT:-$(mktemp -d /tmp/caddy-sse-faults.XXXXXX)}
BIN=$OUT/bin
mkdir -p "$BIN"
rm -rf "$OUT/run"

log() { printf '%s run.sh: %s\n' "$(date +%T)" "$*" >&2; }

log "building caddy, nats-server and sse-faults into $BIN"
go build -o "$BIN/caddy" ./cmd/caddy
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2
go build -o "$BIN/sse-faults" ./cmd/sse-faults

# In the background, so a TERM or INT to this script reaches sse-faults, which then stops what it started.
"$BIN/sse-faults" -caddy "$BIN/caddy" -nats-server "$BIN/nats-server" -dir "$OUT/run" \
	-port-base "${FAULTS_PORT_BASE:-24200}" -seed 1 -clients 200 -rate 100 -faults short \
	-md "$OUT/result.md" -json "$OUT/result.json" "$@" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
rc=0
wait "$pid" || rc=$?
if kill -0 "$pid" 2>/dev/null; then # interrupted: wait for its cleanup
	rc=0
	wait "$pid" || rc=$?
fi
case $rc in
0) log "passed in ${SECONDS}s; results in $OUT" ;;
3) log "a promise was broken (see the table above); logs in $OUT/run" ;;
*) log "the run failed (exit $rc); logs in $OUT/run" ;;
esac
exit "$rc"
