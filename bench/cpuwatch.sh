#!/usr/bin/env bash
# bench/cpuwatch.sh INTERVAL [PID...]: every INTERVAL seconds, one line of machine CPU use in % of one core:
#
#	HH:MM:SS busy bench other softirq steal
#
# busy is all non-idle CPU (user, nice, system, irq, softirq), bench the part used by the benchmark's own
# processes (caddy, nats-server, sse-bench and its bare and worker children, and the PIDs given: run.sh), other
# the rest (anything else running on the machine: it competes with the run; the sampler itself costs ~1%),
# softirq the interrupt and softirq part of busy (on loopback mostly the benchmark's own packets, and here
# charged to the processes that send them), steal the time the hypervisor gave to other guests.
# run.sh keeps it running during the whole run so that noise can be told apart from the figures.
set -uo pipefail
interval=${1:-2}
shift
pids=" $* "
hz=$(getconf CLK_TCK)

# A process's CPU counts while it runs (utime+stime); when it exits, what it used since the last sample shows up
# in its parent's cutime+cstime (with its own reaped children's), so both are tracked for every process of the
# benchmark, and an exited one's last reading is taken back out of its parent's jump.
declare -A last   # pid -> utime+stime+cutime+cstime at the previous sample
declare -A parent # pid -> its parent's pid
read_ours() {     # prints "pid ppid ticks" for every process of the benchmark
	# cat, not awk's own file list: a process that exits between the glob and the read must not end the scan.
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v pids="$pids" '
		$2 == "(caddy)" || $2 == "(nats-server)" || $2 == "(sse-bench)" || index(pids, " " $1 " ") {
			print $1, $4, $14 + $15 + $16 + $17 }'
}
read_cpu() { # prints "busy softirq steal" ticks
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8, $7 + $8, $9 }' /proc/stat
}

trap 'kill $! 2>/dev/null; wait $! 2>/dev/null; exit 0' TERM INT
read -r busy0 sirq0 steal0 < <(read_cpu)
while read -r pid ppid t; do last[$pid]=$t parent[$pid]=$ppid; done < <(read_ours)
while :; do
	sleep "$interval" &
	wait $!
	read -r busy sirq steal < <(read_cpu)
	ours=0
	declare -A now=()
	declare -A nowparent=()
	while read -r pid ppid t; do
		now[$pid]=$t nowparent[$pid]=$ppid
		ours=$((ours + t - ${last[$pid]:-0}))
	done < <(read_ours)
	for pid in "${!last[@]}"; do
		# Exited: its tracked parent's cutime took it over (an orphan's went to init and is lost).
		if [[ -z ${now[$pid]:-} && -n ${now[${parent[$pid]}]:-} ]]; then
			ours=$((ours - last[$pid]))
		fi
	done
	last=() parent=()
	for pid in "${!now[@]}"; do last[$pid]=${now[$pid]} parent[$pid]=${nowparent[$pid]}; done
	unset now nowparent
	awk -v b=$((busy - busy0)) -v o="$ours" -v q=$((sirq - sirq0)) -v s=$((steal - steal0)) -v hz="$hz" -v dt="$interval" -v t="$(date +%T)" \
		'BEGIN { f = 100 / hz / dt; other = b - o; if (other < 0) other = 0
			printf "%s %5.0f %5.0f %5.0f %5.0f %5.0f\n", t, b * f, o * f, other * f, q * f, s * f }'
	busy0=$busy sirq0=$sirq steal0=$steal
done
