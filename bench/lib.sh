#!/usr/bin/env bash
# bench/lib.sh: what bench/run.sh and bench/protocols.sh share, sourced by both: process control (everything
# started is stopped on exit; every wait is bounded), the watchdog, Caddy's start and one sse-bench run.
# The sourcing script sets SCRIPT (its name in log lines), ROOT, OUT, BIN, WORK (when started), COMMON (the
# arguments of every sse-bench run) and the BENCH_* ports.

# The ports (loopback) of nats-server, Caddy's sites and its admin endpoint: bench/Caddyfile reads the same.
export BENCH_NATS_PORT=${BENCH_NATS_PORT:-14222}
export BENCH_SSE_PORT=${BENCH_SSE_PORT:-18080}
export BENCH_ADMIN_PORT=${BENCH_ADMIN_PORT:-12019}
export BENCH_H2C_PORT=${BENCH_H2C_PORT:-18081}
export BENCH_TLS_PORT=${BENCH_TLS_PORT:-18443}
ADMIN=http://127.0.0.1:$BENCH_ADMIN_PORT
WRITE_TIMEOUT=5s # the bare reference's per-write deadline: keep equal to write_timeout in bench/Caddyfile

log() { printf '%s %s: %s\n' "$(date +%T)" "$SCRIPT" "$*" >&2; }
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
	stop "${BARE_PID:-}" # bench/protocols.sh's own bare server
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

# start_watchdog LIMIT: whatever hangs, the script ends after LIMIT seconds (cleanup still runs).
start_watchdog() {
	(
		trap 'kill $! 2>/dev/null; wait $! 2>/dev/null; exit 0' TERM
		sleep "$1" &
		wait $!
		log "time limit of ${1}s reached, stopping"
		kill -TERM $$
	) &
	WATCHDOG_PID=$!
}

# setup MODE: the work directory, the open-file limit, machine.txt, the binaries, the CPU watcher and
# nats-server (JetStream on loopback, a temporary store).
setup() {
	WORK=$(mktemp -d /tmp/caddy-sse-bench.XXXXXX)

	for p in "$BENCH_NATS_PORT" "$BENCH_SSE_PORT" "$BENCH_ADMIN_PORT" "$BENCH_H2C_PORT" "$BENCH_TLS_PORT"; do
		port_free "$p" || die "127.0.0.1:$p is in use; set BENCH_NATS_PORT, BENCH_SSE_PORT, BENCH_ADMIN_PORT, BENCH_H2C_PORT or BENCH_TLS_PORT"
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
		echo "mode: $1"
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
}

# start_caddy LOG: a fresh Caddy with bench/Caddyfile, with as many open files as the machine allows; returns
# once its feed tails the stream and /events answers.
start_caddy() {
	local clog=$OUT/$1
	log "starting caddy with bench/Caddyfile on 127.0.0.1:$BENCH_SSE_PORT (admin $BENCH_ADMIN_PORT)"
	for p in "$BENCH_SSE_PORT" "$BENCH_H2C_PORT" "$BENCH_TLS_PORT"; do
		wait_port_free "$p" 10 || die "127.0.0.1:$p still in use"
	done
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

# memstats TITLE N VARS_BEFORE VARS_AFTER GOROUTINES_BEFORE GOROUTINES_AFTER (files in OUT): Go memory per
# connection (or stream) from two /debug/vars snapshots of runtime.MemStats and two goroutine profiles.
memstats() {
	local title=$1 n=$2 vb=$OUT/$3 va=$OUT/$4 gb=$OUT/$5 ga=$OUT/$6
	[[ -s $vb && -s $va ]] || return 1
	memstat() { grep -o "\"$1\": *[0-9]*" "$2" | head -1 | grep -o '[0-9]*$'; }
	echo "$title"
	for k in HeapInuse StackInuse HeapSys StackSys Sys HeapObjects; do
		b=$(memstat "$k" "$vb") a=$(memstat "$k" "$va")
		awk -v k="$k" -v b="$b" -v a="$a" -v n="$n" 'BEGIN {
			if (k == "HeapObjects") printf "  %-12s %12d -> %12d   %8.1f per connection\n", k, b, a, (a - b) / n
			else printf "  %-12s %12d -> %12d   %8.2f KiB per connection\n", k, b, a, (a - b) / n / 1024
		}'
	done
	echo "  goroutines: $(head -1 "$gb" 2>/dev/null | grep -o '[0-9]*$') -> $(head -1 "$ga" 2>/dev/null | grep -o '[0-9]*$')"
}

# noise: what else ran on the machine during each run of windows.txt (cpu.log, % of one core), once the CPU
# watcher has stopped.
noise() {
	awk 'NR == FNR { name[NR] = $1; from[NR] = $2; to[NR] = $3; k = NR; next }
		{ for (i = 1; i <= k; i++) if ($1 >= from[i] && $1 <= to[i]) {
			n[i]++; o[i] += $4; if ($4 > mo[i]) mo[i] = $4; q[i] += $5; st[i] += $6; if ($6 > ms[i]) ms[i] = $6 } }
		END { printf "CPU used outside the benchmark while each run lasted, %% of one core (2 s samples, bench/cpuwatch.sh):\n"
			printf "  %-16s %16s %14s %16s\n", "run", "other mean/max", "softirq mean", "steal mean/max"
			for (i = 1; i <= k; i++) printf "  %-16s %10.0f /%4.0f %14.0f %10.0f /%4.0f\n", name[i], n[i] ? o[i] / n[i] : 0, mo[i],
				n[i] ? q[i] / n[i] : 0, n[i] ? st[i] / n[i] : 0, ms[i] }' \
		"$OUT/windows.txt" "$OUT/cpu.log"
}
