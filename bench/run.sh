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
# Ports (loopback): BENCH_NATS_PORT (14222), BENCH_SSE_PORT (18080), BENCH_ADMIN_PORT (12019).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
QUICK=${QUICK:-0}
OUT=${BENCH_OUT:-$ROOT/.bench-out}
BIN=$OUT/bin
export BENCH_NATS_PORT=${BENCH_NATS_PORT:-14222}
export BENCH_SSE_PORT=${BENCH_SSE_PORT:-18080}
export BENCH_ADMIN_PORT=${BENCH_ADMIN_PORT:-12019}
WRITE_TIMEOUT=5s # the bare reference's per-write deadline: keep equal to write_timeout in bench/Caddyfile
ADMIN=http://127.0.0.1:$BENCH_ADMIN_PORT

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

log() { printf '%s run.sh: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}

NATS_PID= CADDY_PID= CHILD_PID= WATCHDOG_PID= CPUWATCH_PID= WORK=
PROF_PIDS=()
FAILED=0

alive() { [[ -n $1 && -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }

# stop PID: TERM, up to 10 s, then KILL. Only processes this script started.
stop() {
	local pid=$1
	alive "$pid" || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 100); do
		alive "$pid" || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$CHILD_PID"
	for p in "${PROF_PIDS[@]}"; do stop "$p"; done
	stop "$CADDY_PID"
	stop "$NATS_PID"
	stop "$CPUWATCH_PID"
	stop "$WATCHDOG_PID"
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# Runs a command in the background and waits for it, so a signal (the watchdog, Ctrl-C) is handled at once.
bg_wait() {
	"$@" &
	CHILD_PID=$!
	local rc=0
	wait "$CHILD_PID" || rc=$?
	CHILD_PID=
	return "$rc"
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port seconds: until something listens
	for _ in $(seq $(($2 * 10))); do
		port_free "$1" || return 0
		sleep 0.1
	done
	return 1
}

wait_port_free() { # port seconds
	for _ in $(seq $(($2 * 10))); do
		port_free "$1" && return 0
		sleep 0.1
	done
	return 1
}

# after LOG PATTERN DELAY CMD...: once PATTERN shows up in LOG (at most 60 s), sleeps DELAY, then runs CMD, in
# the background. Used to take profiles at the right moment of a run.
after() {
	local file=$1 pattern=$2 delay=$3
	shift 3
	(
		trap 'kill $! 2>/dev/null; wait $! 2>/dev/null; exit 0' TERM
		for _ in $(seq 600); do
			grep -q -- "$pattern" "$file" 2>/dev/null && break
			sleep 0.1
		done
		sleep "$delay" &
		wait $!
		"$@" &
		wait $!
	) &
	PROF_PIDS+=($!)
}

wait_profilers() {
	for p in "${PROF_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PROF_PIDS=()
}

fetch() { curl -s -m "$1" -o "$2" "$3" || log "could not fetch $3"; }

# The watchdog: whatever hangs, the script ends after LIMIT seconds (cleanup still runs).
(
	trap 'kill $! 2>/dev/null; wait $! 2>/dev/null; exit 0' TERM
	sleep "$LIMIT" &
	wait $!
	log "time limit of ${LIMIT}s reached, stopping"
	kill -TERM $$
) &
WATCHDOG_PID=$!

mkdir -p "$OUT" "$BIN"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.prof "$OUT"/*.txt "$OUT"/*.md
WORK=$(mktemp -d /tmp/caddy-sse-bench.XXXXXX)

for p in "$BENCH_NATS_PORT" "$BENCH_SSE_PORT" "$BENCH_ADMIN_PORT"; do
	port_free "$p" || die "127.0.0.1:$p is in use; set BENCH_NATS_PORT, BENCH_SSE_PORT or BENCH_ADMIN_PORT"
done

# Sockets: the tool holds one per connection (and its bare child as many again).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

{
	echo "date: $(date -u +%FT%TZ)"
	echo "cores: $(nproc)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
	echo "memory: $(grep MemTotal /proc/meminfo | awk '{printf "%.1f GiB", $2/1048576}')"
	echo "kernel: $(uname -sr)"
	echo "go: $(go version)"
	echo "open files: $(ulimit -n) (hard $(ulimit -Hn))"
	echo "tcp_wmem: $(cat /proc/sys/net/ipv4/tcp_wmem 2>/dev/null | tr '\t' ' ')"
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "mode: $([[ $QUICK == 1 ]] && echo QUICK || echo full)"
} >"$OUT/machine.txt"

log "building sse-bench, caddy and nats-server into $BIN"
go build -o "$BIN/sse-bench" ./cmd/sse-bench
go build -o "$BIN/caddy" ./cmd/caddy
go build -o "$BIN/nats-server" github.com/nats-io/nats-server/v2

# Machine CPU every 2 s, split into the benchmark's processes and anything else (noise), for noise.txt.
"$ROOT/bench/cpuwatch.sh" 2 $$ >"$OUT/cpu.log" 2>/dev/null &
CPUWATCH_PID=$!

log "starting nats-server (JetStream, store in $WORK/nats) on 127.0.0.1:$BENCH_NATS_PORT"
"$BIN/nats-server" -a 127.0.0.1 -p "$BENCH_NATS_PORT" -js -sd "$WORK/nats" >"$OUT/nats.log" 2>&1 &
NATS_PID=$!
wait_port "$BENCH_NATS_PORT" 20 || die "nats-server did not start (see $OUT/nats.log)"

# start_caddy LOG: a fresh Caddy with bench/Caddyfile, with as many open files as the machine allows; returns
# once its feed tails the stream and /events answers.
start_caddy() {
	local clog=$OUT/$1
	log "starting caddy with bench/Caddyfile on 127.0.0.1:$BENCH_SSE_PORT (admin $BENCH_ADMIN_PORT)"
	wait_port_free "$BENCH_SSE_PORT" 10 || die "127.0.0.1:$BENCH_SSE_PORT still in use"
	(
		ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
		export XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config
		exec "$BIN/caddy" run --config bench/Caddyfile --adapter caddyfile
	) >"$clog" 2>&1 &
	CADDY_PID=$!
	for _ in $(seq 300); do
		grep -q '"tail running"' "$clog" 2>/dev/null && break
		alive "$CADDY_PID" || die "caddy exited (see $clog)"
		sleep 0.1
	done
	grep -q '"tail running"' "$clog" || die "caddy's feed did not start within 30 s (see $clog)"
	local probe
	probe=$(curl -s -m 2 -N "http://127.0.0.1:$BENCH_SSE_PORT/events" 2>/dev/null | head -c 4 || true)
	[[ $probe == ": ok" ]] || die "no event stream at http://127.0.0.1:$BENCH_SSE_PORT/events"
	log "caddy ready (pid $CADDY_PID, open files $(grep 'Max open files' "/proc/$CADDY_PID/limits" | awk '{print $4}'))"
}
start_caddy caddy.log

COMMON=(
	-url "http://127.0.0.1:$BENCH_SSE_PORT/events" -nats "nats://127.0.0.1:$BENCH_NATS_PORT" -subject bench.run
	-bare-write-timeout "$WRITE_TIMEOUT" -timeout 4m
)

# scenario NAME TARGET SCENARIO ARGS...: one sse-bench run; its JSON line goes to NAME.json.
scenario() {
	local name=$1 target=$2 sc=$3
	shift 3
	log "$name: sse-bench $sc -target $target $*"
	local rc=0 t0
	t0=$(date +%T)
	bg_wait "$BIN/sse-bench" "$sc" -target "$target" -pid "$CADDY_PID" "${COMMON[@]}" "$@" \
		>"$OUT/$name.json" 2>"$OUT/$name.log" || rc=$?
	echo "$name $t0 $(date +%T)" >>"$OUT/windows.txt"
	case $rc in
	0) ;;
	3) log "$name: promises broken (see the table)" ;;
	*)
		log "$name: sse-bench exited with $rc (see $OUT/$name.log)"
		FAILED=$((FAILED + 1))
		;;
	esac
	grep -E '^sse-bench\[[a-z]+\]: [0-9:]+ (idle|fanout|storm|slow): ' "$OUT/$name.log" | sed 's/^/    /' >&2 || true
	alive "$CADDY_PID" || die "caddy died during $name (see $OUT/caddy.log)"
}

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
memstat() { grep -o "\"$1\": *[0-9]*" "$OUT/$2" | head -1 | grep -o '[0-9]*$'; }
if [[ -s $OUT/idle-vars-before.json && -s $OUT/idle-vars-after.json ]]; then
	n=${IDLE[1]}
	{
		echo "Caddy's Go memory per connection at the end of an idle hold ($n connections), runtime.MemStats after a GC:"
		for k in HeapInuse StackInuse HeapSys StackSys Sys HeapObjects; do
			b=$(memstat "$k" idle-vars-before.json) a=$(memstat "$k" idle-vars-after.json)
			awk -v k="$k" -v b="$b" -v a="$a" -v n="$n" 'BEGIN {
				if (k == "HeapObjects") printf "  %-12s %12d -> %12d   %8.1f per connection\n", k, b, a, (a - b) / n
				else printf "  %-12s %12d -> %12d   %8.2f KiB per connection\n", k, b, a, (a - b) / n / 1024
			}'
		done
		echo "  goroutines: $(head -1 "$OUT/idle-goroutines-before.txt" 2>/dev/null | grep -o '[0-9]*$') -> $(head -1 "$OUT/idle-goroutines-after.txt" 2>/dev/null | grep -o '[0-9]*$')"
	} >"$OUT/idle-mem.txt" 2>/dev/null || true
fi

# What else ran on the machine during each run (cpu.log, % of one core; the machine has $(nproc) cores).
stop "$CPUWATCH_PID"
CPUWATCH_PID=
awk 'NR == FNR { name[NR] = $1; from[NR] = $2; to[NR] = $3; k = NR; next }
	{ for (i = 1; i <= k; i++) if ($1 >= from[i] && $1 <= to[i]) {
		n[i]++; o[i] += $4; if ($4 > mo[i]) mo[i] = $4; q[i] += $5; st[i] += $6; if ($6 > ms[i]) ms[i] = $6 } }
	END { printf "CPU used outside the benchmark while each run lasted, %% of one core (2 s samples, bench/cpuwatch.sh):\n"
		printf "  %-16s %16s %14s %16s\n", "run", "other mean/max", "softirq mean", "steal mean/max"
		for (i = 1; i <= k; i++) printf "  %-16s %10.0f /%4.0f %14.0f %10.0f /%4.0f\n", name[i], n[i] ? o[i] / n[i] : 0, mo[i],
			n[i] ? q[i] / n[i] : 0, n[i] ? st[i] / n[i] : 0, ms[i] }' \
	"$OUT/windows.txt" "$OUT/cpu.log" >"$OUT/noise.txt" 2>/dev/null || true

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
