#!/usr/bin/env bash
# bench/protocols.sh: the "Per protocol" table of BENCHMARKS.md: idle memory per stream and fanout CPU and
# p99 of caddy-sse against sse-bench's bare Go server speaking the same protocol, in the same invocation.
#
#	bench/protocols.sh                   # every protocol below (about 8 minutes on 2 cores, 11 with PROFILE=1)
#	bench/protocols.sh h2 h2x100 h3      # some of them (about 70 s each; under the bench lock, run a
#	                                     # few per invocation to keep each hold short)
#	PROFILE=1 bench/protocols.sh h2      # also heap, goroutine and MemStats snapshots of both servers
#	QUICK=1 bench/protocols.sh           # small sizes, a smoke check (about 2 minutes)
#
# Protocols (sse-bench -proto; "xN" is N streams per connection, -h2-streams N): h1 (the reference row, as
# bench/run.sh), h1tls, h2c, h2, h2x100, h3, h3x100. Caddy serves them from bench/Caddyfile: h1 on
# BENCH_SSE_PORT, h2c on BENCH_H2C_PORT (protocols h1 h2c), h1tls, h2 and h3 on BENCH_TLS_PORT (tls internal;
# h3 on the same port over UDP). Clients do not verify certificates (loopback; the bare server makes its own).
#
# Per protocol: a fresh Caddy, idle with 2,000 streams; a fresh Caddy, idle with 5,000 streams, then fanout
# 2,000 streams x 50 events/s for 10 s on it; each with -target both (the bare server first, then Caddy).
# RSS per stream is read on freshly started servers (the bare one is started for each run). With PROFILE=1,
# then a Caddy-only and a bare-only idle hold of 2,000 streams, each on a fresh server, with heap profiles,
# goroutine profiles and /debug/vars (runtime.MemStats) before connecting and at the end of the hold.
#
# Everything goes to .bench-out/protocols/ (gitignored): <proto>-<run>.json and .log, results.md (the table,
# sse-bench prototable), noise.txt, and with PROFILE=1 <proto>-{caddy,bare}-{heap,goroutines,vars}-*.*,
# <proto>-{caddy,bare}-heap.top.txt (the heap at the end against the one before) and <proto>-mem.txt.
# Ports (loopback) as bench/run.sh, plus BENCH_PPROF_PORT (18082) for the bare server's profiles.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SCRIPT=protocols.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
QUICK=${QUICK:-0}
PROFILE=${PROFILE:-0}
OUT=${BENCH_OUT:-$ROOT/.bench-out/protocols}
BIN=$OUT/bin
BENCH_PPROF_PORT=${BENCH_PPROF_PORT:-18082}
PROTOS=("$@")
[[ ${#PROTOS[@]} -gt 0 ]] || PROTOS=(h1 h1tls h2c h2 h2x100 h3 h3x100)

if [[ $QUICK == 1 ]]; then
	IDLE_CS=(200 500) IDLE_HOLD=2s PROF_C=200 PROF_HOLD=5
	FANOUT=(-c 200 -rate 20 -duration 2s)
else
	IDLE_CS=(2000 5000) IDLE_HOLD=3s PROF_C=2000 PROF_HOLD=8
	FANOUT=(-c 2000 -rate 50 -duration 10s)
fi
LIMIT=${BENCH_LIMIT:-$((60 + 150 * ${#PROTOS[@]} * (PROFILE + 1)))}

BARE_PID=

for spec in "${PROTOS[@]}"; do
	case ${spec%x*} in
	h1 | h1tls | h2c | h2 | h3) ;;
	*) die "unknown protocol $spec (h1 h1tls h2c h2 h3, each with an optional xN for N streams per connection)" ;;
	esac
done

start_watchdog "$LIMIT"
mkdir -p "$OUT" "$BIN"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.prof "$OUT"/*.txt "$OUT"/*.md
setup "$([[ $QUICK == 1 ]] && echo QUICK || echo full) protocols ${PROTOS[*]}$([[ $PROFILE == 1 ]] && echo ', profiles')"

# caddy_fresh LOG: a fresh Caddy whose TLS and h2c sites answer too (the TLS site's certificate is issued by
# the internal CA at start).
caddy_fresh() {
	stop "$CADDY_PID"
	start_caddy "$1"
	local probe
	for _ in $(seq 50); do
		probe=$(curl -sk -m 2 -N "https://127.0.0.1:$BENCH_TLS_PORT/events" 2>/dev/null | head -c 4 || true)
		[[ $probe == ": ok" ]] && break
		sleep 0.2
	done
	[[ $probe == ": ok" ]] || die "no event stream at https://127.0.0.1:$BENCH_TLS_PORT/events (see $OUT/$1)"
	probe=$(curl -s -m 2 -N --http2-prior-knowledge "http://127.0.0.1:$BENCH_H2C_PORT/events" 2>/dev/null | head -c 4 || true)
	[[ $probe == ": ok" ]] || die "no h2c event stream at http://127.0.0.1:$BENCH_H2C_PORT/events"
}

# snapshot BASE NAME SUFFIX: heap profile (after a GC), MemStats and goroutines of the server at BASE.
snapshot() {
	fetch 30 "$OUT/$2-heap-$3.prof" "$1/debug/pprof/heap?gc=1"
	fetch 10 "$OUT/$2-vars-$3.json" "$1/debug/vars"
	fetch 10 "$OUT/$2-goroutines-$3.txt" "$1/debug/pprof/goroutine?debug=1"
}

# profile SPEC PROTO STREAMS: idle holds of PROF_C streams under the profilers, Caddy's then the bare server's.
profile() {
	local spec=$1 proto=$2 streams=$3 bin log
	local idle=(idle -c "$PROF_C" -duration "${PROF_HOLD}s")
	local at=$((PROF_HOLD - 3))
	caddy_fresh "$spec-caddy-profile.log"
	snapshot "$ADMIN" "$spec-caddy" before
	after "$OUT/$spec-profile-caddy.log" 'sse-bench\[caddy\]: [0-9:]* holding' "$at" snapshot "$ADMIN" "$spec-caddy" after
	scenario "$spec-profile-caddy" caddy "${idle[@]}"
	wait_profilers

	# The bare server, started here (not by sse-bench) so it can be read before any stream connects.
	local pprof=127.0.0.1:$BENCH_PPROF_PORT blog=$OUT/$spec-bare-server.log
	coproc BARE { exec "$BIN/sse-bench" bare -listen 127.0.0.1:0 -proto "$proto" -pprof "$pprof" \
		-nats "nats://127.0.0.1:$BENCH_NATS_PORT" -subject bench.proto -write-timeout "$WRITE_TIMEOUT" \
		-timeout 5m -exit-on-stdin 2>"$blog"; }
	BARE_PID=$BARE_PID
	local hello addr
	read -r -t 15 hello <&"${BARE[0]}" || die "the bare server did not start (see $blog)"
	addr=$(grep -o '"listen":"[^"]*"' <<<"$hello" | cut -d'"' -f4)
	wait_port "$BENCH_PPROF_PORT" 10 || die "no pprof listener of the bare server (see $blog)"
	snapshot "http://$pprof" "$spec-bare" before
	after "$OUT/$spec-profile-bare.log" 'sse-bench\[bare\]: [0-9:]* holding' "$at" snapshot "http://$pprof" "$spec-bare" after
	scenario "$spec-profile-bare" bare "${idle[@]}" -bare-url "$(proto_scheme "$proto")://$addr/" -bare-pid "$BARE_PID"
	wait_profilers
	eval "exec ${BARE[1]}>&-"
	stop "$BARE_PID"
	BARE_PID=

	for side in caddy bare; do
		bin=$BIN/caddy
		[[ $side == bare ]] && bin=$BIN/sse-bench
		[[ -s $OUT/$spec-$side-heap-after.prof ]] || continue
		go tool pprof -top -nodecount=40 -base "$OUT/$spec-$side-heap-before.prof" "$bin" \
			"$OUT/$spec-$side-heap-after.prof" >"$OUT/$spec-$side-heap.top.txt" 2>/dev/null || true
		memstats "$side, $spec: Go memory per stream at the end of an idle hold ($PROF_C streams, $streams per connection):" \
			"$PROF_C" "$spec-$side-vars-before.json" "$spec-$side-vars-after.json" \
			"$spec-$side-goroutines-before.txt" "$spec-$side-goroutines-after.txt" || true
	done >"$OUT/$spec-mem.txt"
}

proto_scheme() { case $1 in h1 | h2c) echo http ;; *) echo https ;; esac }

for spec in "${PROTOS[@]}"; do
	proto=${spec%x*} streams=1
	[[ $spec == *x* ]] && streams=${spec#*x}
	case $proto in
	h1) url=http://127.0.0.1:$BENCH_SSE_PORT/events ;;
	h2c) url=http://127.0.0.1:$BENCH_H2C_PORT/events ;;
	*) url=https://127.0.0.1:$BENCH_TLS_PORT/events ;;
	esac
	COMMON=(
		-url "$url" -proto "$proto" -h2-streams "$streams" -nats "nats://127.0.0.1:$BENCH_NATS_PORT"
		-subject bench.proto -bare-write-timeout "$WRITE_TIMEOUT" -timeout 4m
	)
	for c in "${IDLE_CS[@]}"; do
		caddy_fresh "$spec-caddy-idle-$c.log"
		scenario "$spec-idle-$c" both idle -c "$c" -duration "$IDLE_HOLD"
	done
	scenario "$spec-fanout" both fanout "${FANOUT[@]}"
	[[ $PROFILE == 1 ]] && profile "$spec" "$proto" "$streams"
done

log "stopping caddy and nats-server"
stop "$CADDY_PID"
CADDY_PID=
stop "$NATS_PID"
NATS_PID=
stop "$CPUWATCH_PID"
CPUWATCH_PID=
noise >"$OUT/noise.txt" 2>/dev/null || true

tables=()
for spec in "${PROTOS[@]}"; do
	for f in "$OUT/$spec"-idle-*.json "$OUT/$spec-fanout.json"; do
		[[ -s $f ]] && tables+=("$f")
	done
done
"$BIN/sse-bench" prototable "${tables[@]}" >"$OUT/results.md" || log "could not render the table"
log "done in ${SECONDS}s; results in $OUT"
cat "$OUT/results.md"
[[ -s $OUT/noise.txt ]] && cat "$OUT/noise.txt" >&2
[[ $FAILED == 0 ]] || die "$FAILED run(s) failed"
