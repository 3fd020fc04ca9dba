#!/usr/bin/env bash
# bench/embedded.sh: fanout with Caddy's embedded JetStream server (the default a newcomer runs: no nats_url),
# against the bare net/http reference reading that same embedded server, in interleaved pairs in both orders.
#
#	bench/embedded.sh                    # 3 pairs caddy-then-bare and 3 bare-then-caddy, 2,000 clients x 50/s, 15 s
#	PAIRS=2 C=1000 RATE=20 bench/embedded.sh
#	SYNC=1s bench/embedded.sh            # the global sync option (default: the module's default, always)
#	CADDY_ENV="GOGC=200" bench/embedded.sh   # extra environment for Caddy (GODEBUG=gctrace=1 goes to its log)
#	PROFILE=1 bench/embedded.sh          # a CPU profile (5 s) and an execution trace (3 s) of Caddy in every Caddy run
#	ROUTE="http1_takeover off" bench/embedded.sh   # extra lines for the sse route
#	BARE_SOURCE=jetstream bench/embedded.sh   # the bare server reads an ordered consumer (once stored), not core NATS
#	FSYNC=1 bench/embedded.sh            # every fsync of Caddy during its runs, timed (perf trace): <run>.fsync.txt
#
# Caddy runs with bench/Caddyfile's route settings but without nats_url, so it starts its embedded server, which
# listens on BENCH_NATS_PORT with its store in a temporary directory. sse-bench publishes there, and the bare
# reference it starts (-target bare) subscribes there too, so both read the same server; the embedded server's
# CPU is in Caddy's process either way, so -nats-pid adds Caddy's CPU during the bare run's window to the bare
# server's own: all_in_cpu_us_per_delivery is the fair CPU figure (Caddy's tail, with no clients, is in it too).
# By default the bare reference sees each message on a core subscription, before JetStream stores it (and, with
# sync always, before the fsync), as it does with an external server; BARE_SOURCE=jetstream makes it read an
# ordered consumer instead, so that both wait for the store and the latency ratio prices the fan-out alone.
#
# The warm-up and the pairs hold the machine-wide lock (/tmp/caddy-sse-bench.lock) once, for about 45 s a pair
# (LOCKED=1: the caller holds it, e.g. around several invocations). Results go to
# BENCH_OUT (default .bench-out/embedded): <pair>-<target>.json, .log, pairs.txt (one line per pair: p99 and
# all-in CPU per delivery of both, their ratios, and the machine's CPU used by others during the pair).
# Ports: BENCH_NATS_PORT (14222), BENCH_SSE_PORT (18080), BENCH_ADMIN_PORT (12019).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${BENCH_OUT:-$ROOT/.bench-out/embedded}
BIN=$OUT/bin
NATS_PORT=${BENCH_NATS_PORT:-14222}
SSE_PORT=${BENCH_SSE_PORT:-18080}
ADMIN_PORT=${BENCH_ADMIN_PORT:-12019}
PAIRS=${PAIRS:-3} C=${C:-2000} RATE=${RATE:-50} DURATION=${DURATION:-15s}
SYNC=${SYNC:-} CADDY_ENV=${CADDY_ENV:-} PROFILE=${PROFILE:-0} ROUTE=${ROUTE:-} FSYNC=${FSYNC:-0} BARE_SOURCE=${BARE_SOURCE:-core}
LOCK=/tmp/caddy-sse-bench.lock LOCKED=${LOCKED:-0}
ADMIN=http://127.0.0.1:$ADMIN_PORT

log() { printf '%s embedded.sh: %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "$*"
	exit 1
}
alive() { [[ -n $1 && -e /proc/$1 ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
stop() { # TERM, up to 10 s, then KILL; only what this script started
	alive "$1" || return 0
	kill -TERM "$1" 2>/dev/null || return 0
	for _ in $(seq 100); do
		alive "$1" || return 0
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}
CADDY_PID= WORK=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	stop "$CADDY_PID"
	[[ -n $WORK ]] && rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$NATS_PORT" "$SSE_PORT" "$ADMIN_PORT"; do
	port_free "$p" || die "127.0.0.1:$p is in use; set BENCH_NATS_PORT, BENCH_SSE_PORT or BENCH_ADMIN_PORT"
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

mkdir -p "$OUT" "$BIN"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.prof "$OUT"/*.trace "$OUT"/*.txt
WORK=$(mktemp -d /tmp/caddy-sse-embedded.XXXXXX)
log "building sse-bench and caddy into $BIN"
go build -o "$BIN/sse-bench" ./cmd/sse-bench
go build -o "$BIN/caddy" ./cmd/caddy

# bench/Caddyfile's /events route without nats_url, and the global sse option for the embedded server.
sync_line=
[[ -n $SYNC ]] && sync_line="sync $SYNC"
cat >"$WORK/Caddyfile" <<EOF
{
	admin 127.0.0.1:$ADMIN_PORT
	persist_config off
	grace_period 2s
	log {
		level INFO
	}
	sse {
		listen 127.0.0.1:$NATS_PORT
		store_dir $WORK/jetstream
		$sync_line
	}
}
http://127.0.0.1:$SSE_PORT {
	bind 127.0.0.1
	sse /events bench.> {
		stream BENCH
		write_timeout 5s
		buffer 256
		heartbeat 15s
		replay_limit 10000
		first_event new
		$ROUTE
	}
}
EOF

log "starting caddy with its embedded server on 127.0.0.1:$NATS_PORT (store $WORK/jetstream, bare source $BARE_SOURCE${SYNC:+, sync $SYNC}${CADDY_ENV:+, env $CADDY_ENV}${ROUTE:+, route: $ROUTE})"
(
	export XDG_DATA_HOME=$WORK/data XDG_CONFIG_HOME=$WORK/config
	# shellcheck disable=SC2086 # CADDY_ENV is a list of VAR=value words
	exec env $CADDY_ENV "$BIN/caddy" run --config "$WORK/Caddyfile" --adapter caddyfile
) >"$OUT/caddy.log" 2>&1 &
CADDY_PID=$!
for _ in $(seq 300); do
	grep -q '"tail running"' "$OUT/caddy.log" 2>/dev/null && break
	alive "$CADDY_PID" || die "caddy exited (see $OUT/caddy.log)"
	sleep 0.1
done
grep -q '"tail running"' "$OUT/caddy.log" || die "caddy's feed did not start within 30 s (see $OUT/caddy.log)"

COMMON=(fanout -url "http://127.0.0.1:$SSE_PORT/events" -nats "nats://127.0.0.1:$NATS_PORT" -subject bench.run
	-nats-pid "$CADDY_PID" -bare-source "$BARE_SOURCE" -bare-write-timeout 5s -timeout 3m -c "$C" -rate "$RATE")

machine_busy() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; } # ticks, all cores
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# fsyncs FILE: the distribution of the fsync durations perf trace recorded ("... ( 3.228 ms): caddy/123 fsync(").
fsyncs() {
	grep -o '( *[0-9.]* ms): [^ ]* f[a-z]*sync(' "$1" | awk '{ gsub(/[(]/, ""); print $1 }' | sort -n | awk '
		{ d[NR] = $1; s += $1; if ($1 > 20) o20++; if ($1 > 100) o100++ }
		END { if (NR == 0) { print "fsync: none traced"; exit }
			printf "fsync: n %d, mean %.2f ms, p50 %.2f, p99 %.2f, max %.1f; over 20 ms: %d, over 100 ms: %d; total %.0f ms\n",
				NR, s / NR, d[int(NR * 0.5) + 1], d[int(NR * 0.99) + 1], d[NR], o20, o100, s }'
}

# run NAME TARGET [ARGS...]: one sse-bench fanout run; NAME.json, NAME.log.
run() {
	local name=$1 target=$2
	shift 2
	local pid=()
	[[ $target == caddy ]] && pid=(-pid "$CADDY_PID")
	local prof=()
	if [[ $PROFILE == 1 && $target == caddy ]]; then
		(
			sleep 8
			curl -s -m 30 -o "$OUT/$name.prof" "$ADMIN/debug/pprof/profile?seconds=5"
			curl -s -m 30 -o "$OUT/$name.trace" "$ADMIN/debug/pprof/trace?seconds=3"
		) &
		prof=($!)
	fi
	local tracer=
	if [[ $FSYNC == 1 && $target == caddy ]]; then
		perf trace -p "$CADDY_PID" -e fsync,fdatasync -o "$OUT/$name.fsync" 2>/dev/null &
		tracer=$!
	fi
	"$BIN/sse-bench" "${COMMON[@]}" -target "$target" "${pid[@]}" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log" ||
		log "$name: sse-bench exited with $? (see $OUT/$name.log)"
	[[ ${#prof[@]} == 0 ]] || wait "${prof[0]}" || true
	if [[ -n $tracer ]]; then
		kill -INT "$tracer" 2>/dev/null || true
		wait "$tracer" 2>/dev/null || true
		fsyncs "$OUT/$name.fsync" >"$OUT/$name.fsync.txt"
		sed 's/^/    /' "$OUT/$name.fsync.txt" >&2
	fi
	grep -E 'fanout: ' "$OUT/$name.log" | sed 's/^/    /' >&2 || true
	alive "$CADDY_PID" || die "caddy died during $name (see $OUT/caddy.log)"
}

# pair NAME FIRST SECOND: both runs, then one line of pairs.txt.
pair() {
	local name=$1 first=$2 second=$3
	local m0 c0 m1 c1
	m0=$(machine_busy) c0=$(proc_ticks "$CADDY_PID")
	log "$name: $first then $second"
	run "$name-$first" "$first" -duration "$DURATION"
	run "$name-$second" "$second" -duration "$DURATION"
	m1=$(machine_busy) c1=$(proc_ticks "$CADDY_PID")
	# Others' CPU during the pair: the machine's busy time minus Caddy's, the bare server's and the tool's
	# (the bare server's outside its fanout window is not known: a slight overestimate).
	jq -rs --arg name "$name" --arg order "$first-$second" --argjson busy $(((m1 - m0))) --argjson caddy $(((c1 - c0))) '
		(map(select(.target == "caddy"))[0].results.caddy) as $c | (map(select(.target == "bare"))[0].results.bare) as $b |
		($busy / 100) as $busy_s |
		($busy_s - $caddy / 100 - $c.tool_cpu_s - $b.tool_cpu_s - $b.fanout.server_cpu_s) as $others |
		[$name, $order,
		 $c.fanout.latency_ms.p99, $b.fanout.latency_ms.p99, ($c.fanout.latency_ms.p99 / $b.fanout.latency_ms.p99 * 1000 | round / 1000),
		 $c.fanout.all_in_cpu_us_per_delivery, $b.fanout.all_in_cpu_us_per_delivery,
		 ($c.fanout.all_in_cpu_us_per_delivery / $b.fanout.all_in_cpu_us_per_delivery * 1000 | round / 1000),
		 $b.fanout.server_cpu_us_per_delivery,
		 ($c.fanout.missing + $c.fanout.duplicates + $c.fanout.out_of_order),
		 ($others | . * 10 | round / 10)] | @tsv' "$OUT/$name-caddy.json" "$OUT/$name-bare.json" >>"$OUT/pairs.txt" ||
		log "$name: could not read the results"
	tail -1 "$OUT/pairs.txt" >&2
}

if [[ $LOCKED != 1 ]]; then
	log "waiting for $LOCK"
	exec 9>"$LOCK"
	flock 9
fi
log "warm-up (not counted)"
run warmup caddy -duration 5s
printf 'pair\torder\tcaddy_p99_ms\tbare_p99_ms\tp99_ratio\tcaddy_cpu_us\tbare_allin_cpu_us\tcpu_ratio\tbare_own_cpu_us\tcaddy_lost_dup_ooo\tothers_cpu_s\n' >"$OUT/pairs.txt"
for i in $(seq "$PAIRS"); do
	pair "a$i" caddy bare
	pair "b$i" bare caddy
done
log "done; $OUT/pairs.txt:"
column -t "$OUT/pairs.txt" >&2
