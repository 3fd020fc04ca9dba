package main

import (
	"context"
	"time"
)

// runFanout publishes R events/s for D to C clients on one subject and
// measures delivery rate, latency, server CPU per delivery and correctness.
func runFanout(ctx context.Context, t *targetRun) error {
	o := t.o
	if err := t.connect(ctx); err != nil {
		return err
	}
	_, cpu0 := t.server.read()
	nats0 := t.natsCPU()
	tool0, start := t.toolCPU(), time.Now()
	t.log.Printf("publishing %.0f events/s for %s to %d clients", o.rate, o.duration, o.clients)
	if _, err := t.pub.paced(ctx, o.rate, o.duration, nil); err != nil {
		return err
	}
	last, err := t.flush(ctx)
	if err != nil {
		return err
	}
	published := time.Now()
	if _, _, err := t.waitCaughtUp(ctx, last, o.drain); err != nil {
		return err
	}
	window := time.Since(start)
	_, cpu1 := t.server.read()
	cpu, tool := cpu1-cpu0, t.toolCPU()-tool0
	nats := t.natsCPU() - nats0
	rep, err := t.report(last)
	if err != nil {
		return err
	}
	res := &fanoutResult{
		Rate: o.rate, DurationS: o.duration.Seconds(), Published: last,
		Deliveries: rep.Delivered, ExpectedDeliveries: last * int64(rep.Clients),
		WindowS: seconds(window), DrainS: seconds(time.Since(published)),
		LatencyMS:  msDist(rep.Latency[0]),
		ServerCPUS: seconds(cpu), ServerCPUUsPerDelivery: perUnit(cpu, rep.Delivered), ServerCPUPct: pct(cpu, window),
		ToolCPUS: seconds(tool), ToolCPUPct: pct(tool, window),
		NATSCPUS: seconds(nats), AllInCPUUsPerDelivery: perUnit(cpu+nats, rep.Delivered),
		Missing: rep.Missing, Duplicates: rep.Duplicates, OutOfOrder: rep.OutOfOrder,
		Resets: rep.Resets, Disconnects: rep.Disconnects, Reconnects: rep.Reconnects, Foreign: rep.Foreign,
	}
	if window > 0 {
		res.DeliveriesPerS = round3(float64(rep.Delivered) / window.Seconds())
	}
	t.res.Fanout = res
	t.log.Printf("fanout: %d deliveries (%.0f/s), latency p50 %.2fms p99 %.2fms max %.2fms, missing %d dup %d ooo %d",
		res.Deliveries, res.DeliveriesPerS, res.LatencyMS.P50, res.LatencyMS.P99, res.LatencyMS.Max,
		res.Missing, res.Duplicates, res.OutOfOrder)
	return nil
}

// natsCPU is the CPU time of -nats-pid, or 0 when it is unset or the server under test itself (already counted).
func (t *targetRun) natsCPU() time.Duration {
	if t.o.natsPID == 0 || t.o.natsPID == t.pid {
		return 0
	}
	c, err := procCPU(t.o.natsPID)
	if err != nil {
		return 0
	}
	return c
}
