#!/usr/bin/env bash
# bench/run.sh: reproduces the results table of BENCHMARKS.md on this machine.
#
#	bench/run.sh            # the full run (about 10 minutes on 2 cores, build cache warm)
#	QUICK=1 bench/run.sh    # small sizes, a smoke check of the whole pipeline (about 100 seconds)
#
# It builds sse-bench, a Caddy with the module and a nats-server (from the module cache), starts nats-server
# with JetStream on loopback and a temporary store, starts Caddy with bench/Caddyfile, runs every scenario with
# -target both (a bare net/http reference server, then Caddy), two reconnect storms against the rate-limited
# route (storm-limited*.json, not in the table), the deep storm against bare (storm-deep.json, not in the table
# either), then restarts Caddy for three Caddy-only runs
# under the profilers (idle memory, fanout CPU, storm CPU), then the hub micro-benchmarks with nothing else
# running. Everything goes to .bench-out/ (gitignored):
#
#	<run>.json  the scenario's JSON line       <run>.log  its progress
#	results.md  the Markdown table             machine.txt, hub-bench.txt
#	*.prof      pprof profiles (read with: go tool pprof -top .bench-out/bin/caddy .bench-out/<name>.prof)
#	*.top.txt, *.cum.txt  their -top summaries idle-mem.txt  Go memory per connection at the end of idle
#	cpu.log, noise.txt    machine CPU every 2 s (bench/cpuwatch.sh), and per run what else used CPU
#
# Everything it starts is stopped on exit, and it stops by itself: every wait is bounded, each sse-bench run
# has a -timeout, and a watchdog ends the script after BENCH_LIMIT seconds.
# Ports (loopback): BENCH_NATS_PORT (14222), BENCH_SSE_PORT (18080), BENCH_ADMIN_PORT (12019), and the
# per-protocol sites of bench/Caddyfile that Caddy also opens (bench/protocols.sh measures them):
# BENCH_H2C_PORT (18081), BENCH_TLS_PORT (18443, TCP and UDP).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SCRIPT=run.sh
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
QUICK=${QUICK:-0}
OUT=${BENCH_OUT:-$ROOT/.bench-out}
BIN=$OUT/bin

if [[ $QUICK == 1 ]]; then
	LIMIT=${BENCH_LIMIT:-300}
	IDLE=(-c 1000 -duration 3s)
	FANOUT=(-c 1000 -rate 10 -duration 4s)
	SWEEP_C=500 SWEEP_RATES=(50 200) SWEEP_D=3s
	STORM=(-c 1000 -missed 200 -rate 10 -duration 2s)
	STORM_LIMITED=(-c 3000 -missed 200 -rate 10 -duration 2s)
	STORM_JS=(-c 100 -missed 9000 -rate 10 -duration 2s)
	STORM_DEEP=(-c 100 -missed 9000 -rate 10 -duration 2s)
	# Too short for a stalled socket to fill (that takes 20-45 s here): the cut is expected to be "missed".
	SLOW=(-c 500 -slow-percent 2 -rate 20 -payload 4096 -duration 2s -cut-wait 4s)
	PROF_FANOUT=(-c 1000 -rate 10 -duration 4s) PROF_FANOUT_S=2
	PROF_STORM=(-c 1000 -missed 200 -rate 10 -duration 2s) PROF_STORM_S=1
	HUB_BENCH=${HUB_BENCH:-0}
else
	LIMIT=${BENCH_LIMIT:-900}
	IDLE=(-c 15000 -duration 10s)
	FANOUT=(-c 10000 -rate 10 -duration 30s)
	SWEEP_C=2000 SWEEP_RATES=(200 400 600 800 1000) SWEEP_D=10s
	STORM=(-c 10000 -missed 1000 -rate 10 -duration 5s)
	# Against the rate-limited route: 10,000 clients at 2,000 admitted per second; then 10,000 whose replays
	# go beyond the node's 8,192-event memory, read from JetStream (about 80 s here). That one saturates the
	# machine: the node can take more than the default 10 s to answer a connect, hence -dial-timeout 30s.
	STORM_LIMITED=(-c 10000 -missed 1000 -rate 10 -duration 5s)
	STORM_JS=(-c 10000 -missed 12000 -rate 10 -duration 5s -dial-timeout 30s -storm-wait 4m -timeout 6m)
	# The deep storm: 1,000 clients miss 12,000 events (beyond the 8,192 in memory) and reconnect at once,
	# uncapped; about 30 s for both targets.
	STORM_DEEP=(-c 1000 -missed 12000 -rate 10 -duration 5s)
	# 4 KiB events at 5/s: a stalled socket fills in 40-45 s (the server's send buffer autotunes to ~850 KiB),
	# and 10,000 healthy clients at 5/s leave the machine some headroom, so their p99 means something.
	SLOW=(-c 10000 -slow-percent 1 -rate 5 -payload 4096 -duration 10s -cut-wait 60s)
	PROF_FANOUT=(-c 10000 -rate 10 -duration 15s) PROF_FANOUT_S=12
	PROF_STORM=(-c 10000 -missed 1000 -rate 10 -duration 5s) PROF_STORM_S=5
	HUB_BENCH=${HUB_BENCH:-1}
fi


start_watchdog "$LIMIT"

mkdir -p "$OUT" "$BIN"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.prof "$OUT"/*.txt "$OUT"/*.md
setup "$([[ $QUICK == 1 ]] && echo QUICK || echo full)"
start_caddy caddy.log

COMMON=(
	-url "http://127.0.0.1:$BENCH_SSE_PORT/events" -nats "nats://127.0.0.1:$BENCH_NATS_PORT" -subject bench.run
	-bare-write-timeout "$WRITE_TIMEOUT" -timeout 4m
)


# 1. The table: every scenario against bare, then Caddy. Idle first, on the freshly started Caddy.
scenario idle both idle "${IDLE[@]}"

scenario fanout both fanout "${FANOUT[@]}"
for r in "${SWEEP_RATES[@]}"; do
	scenario "sweep-$r" both fanout -c "$SWEEP_C" -rate "$r" -duration "$SWEEP_D" -drain 10s
done
scenario storm both storm "${STORM[@]}"
scenario slow both slow "${SLOW[@]}"
# The reconnect storm against a rate-limited node: bench/Caddyfile's /events-limited (max_connect_rate 2000/s,
# retry 1s) turns clients away and they come back with their Last-Event-ID; the bare reference gets the same
# cap. The server's replay and turn-away counters come from Caddy's /metrics. Then missed events beyond the
# node's memory, so its replays read JetStream (Caddy only: the bare server has no JetStream).
LIMITED=(-url "http://127.0.0.1:$BENCH_SSE_PORT/events-limited" -metrics "$ADMIN/metrics")
scenario storm-limited both storm "${LIMITED[@]}" -bare-max-connect-rate 2000 -bare-retry 1s "${STORM_LIMITED[@]}"
scenario storm-limited-js caddy storm "${LIMITED[@]}" "${STORM_JS[@]}"

# The deep storm against bare: clients that missed more than the node's memory all come back at once on
# /events-deep (no connect cap, replay_limit 20000). Caddy reads JetStream once for all of them (the JSON's
# consumers_created, and replays.jetstream from /metrics); the bare reference serves them from its ring.
DEEP=(-url "http://127.0.0.1:$BENCH_SSE_PORT/events-deep" -metrics "$ADMIN/metrics")
scenario storm-deep both storm "${DEEP[@]}" "${STORM_DEEP[@]}"

# 2. Profiles, in Caddy-only runs of the same shape, so the profilers' own cost stays out of the table. A fresh
# Caddy first, so its memory before the idle hold is a clean baseline: Go's memory before and at the end of the
# hold (each after a forced GC: heap profile, runtime.MemStats, goroutines), then CPU during fanout and during the
# storm's catch-up.
stop "$CADDY_PID"
start_caddy caddy-profile.log
memory() { # suffix
	fetch 30 "$OUT/idle-heap-$1.prof" "$ADMIN/debug/pprof/heap?gc=1"
	fetch 10 "$OUT/idle-vars-$1.json" "$ADMIN/debug/vars"
	fetch 10 "$OUT/idle-goroutines-$1.txt" "$ADMIN/debug/pprof/goroutine?debug=1"
}
memory before
hold=${IDLE[3]%s}
after "$OUT/profile-idle.log" 'sse-bench\[caddy\]: [0-9:]* holding' $((hold > 4 ? hold - 3 : 1)) memory after
scenario profile-idle caddy idle "${IDLE[@]}"
wait_profilers
[[ -s $OUT/idle-heap-after.prof ]] && mv "$OUT/idle-heap-after.prof" "$OUT/idle-heap.prof"
after "$OUT/profile-fanout.log" 'sse-bench\[caddy\]: [0-9:]* publishing' 1 \
	fetch $((PROF_FANOUT_S + 20)) "$OUT/fanout-cpu.prof" "$ADMIN/debug/pprof/profile?seconds=$PROF_FANOUT_S"
scenario profile-fanout caddy fanout "${PROF_FANOUT[@]}"
wait_profilers
after "$OUT/profile-storm.log" 'sse-bench\[caddy\]: [0-9:]* .*reconnecting all at once' 0 \
	fetch $((PROF_STORM_S + 20)) "$OUT/storm-cpu.prof" "$ADMIN/debug/pprof/profile?seconds=$PROF_STORM_S"
scenario profile-storm caddy storm "${PROF_STORM[@]}"
wait_profilers

log "stopping caddy and nats-server"
stop "$CADDY_PID"
CADDY_PID=
stop "$NATS_PID"
NATS_PID=

# 3. The table and the profile summaries.
"$BIN/sse-bench" table "$OUT/idle.json" "$OUT/fanout.json" "$OUT"/sweep-*.json "$OUT/storm.json" "$OUT/slow.json" \
	>"$OUT/results.md" || log "could not render the table"
for p in fanout-cpu storm-cpu idle-heap; do
	[[ -s $OUT/$p.prof ]] || {
		log "no $p profile"
		continue
	}
	base=()
	# The idle heap is read against the heap before connecting: what the connections hold.
	[[ $p == idle-heap && -s $OUT/idle-heap-before.prof ]] && base=(-base "$OUT/idle-heap-before.prof")
	go tool pprof -top -nodecount=40 "${base[@]}" "$BIN/caddy" "$OUT/$p.prof" >"$OUT/$p.top.txt" 2>/dev/null || true
	go tool pprof -top -cum -nodecount=60 "${base[@]}" "$BIN/caddy" "$OUT/$p.prof" >"$OUT/$p.cum.txt" 2>/dev/null || true
done

# Go memory per idle connection, from runtime.MemStats before and at the end of the hold (both after a GC).
memstats "Caddy's Go memory per connection at the end of an idle hold (${IDLE[1]} connections), runtime.MemStats after a GC:" \
	"${IDLE[1]}" idle-vars-before.json idle-vars-after.json idle-goroutines-before.txt idle-goroutines-after.txt \
	>"$OUT/idle-mem.txt" 2>/dev/null || true

# What else ran on the machine during each run.
stop "$CPUWATCH_PID"
CPUWATCH_PID=
noise >"$OUT/noise.txt" 2>/dev/null || true

# 4. The hub micro-benchmarks, with nothing else running.
if [[ $HUB_BENCH == 1 ]]; then
	log "hub micro-benchmarks"
	bg_wait go test -run xxx -bench . -benchmem ./hub >"$OUT/hub-bench.txt" 2>&1 || log "hub benchmarks failed (see $OUT/hub-bench.txt)"
fi

log "done in ${SECONDS}s; results in $OUT"
cat "$OUT/results.md"
[[ -s $OUT/idle-mem.txt ]] && cat "$OUT/idle-mem.txt" >&2
[[ -s $OUT/noise.txt ]] && cat "$OUT/noise.txt" >&2
[[ $FAILED == 0 ]] || die "$FAILED run(s) failed"
