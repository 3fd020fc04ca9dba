package main

import (
	"context"
	"time"
)

// runIdle holds C connections open without traffic and measures what they
// cost the server: RSS per connection and CPU while holding, plus how long
// connecting took.
func runIdle(ctx context.Context, t *targetRun) error {
	o := t.o
	rssBefore, _ := t.server.read()
	if err := t.connect(ctx); err != nil {
		return err
	}
	// Let the server finish per-connection setup before reading RSS.
	if !sleepCtx(ctx, o.settle) {
		return ctx.Err()
	}
	rssAfter, cpu0 := t.server.read()
	tool0, start := t.toolCPU(), time.Now()
	t.log.Printf("holding %d connections for %s", o.clients, o.duration)
	if !sleepCtx(ctx, o.duration) {
		return ctx.Err()
	}
	_, cpu1 := t.server.read()
	hold, tool := time.Since(start), t.toolCPU()-tool0
	rep, err := t.report(0)
	if err != nil {
		return err
	}
	res := &idleResult{
		HoldS: seconds(hold), RSSKiBBefore: rssBefore, RSSKiBAfter: rssAfter,
		ServerCPUPctHold: pct(cpu1-cpu0, hold), ToolCPUPctHold: pct(tool, hold),
		Disconnects: rep.Disconnects,
	}
	if rep.Connected > 0 && t.server.pid != 0 {
		res.RSSKiBPerConn = round3(float64(rssAfter-rssBefore) / float64(rep.Connected))
	}
	t.res.Idle = res
	t.log.Printf("idle: %.1f KiB server RSS per connection, connect p50 %.2fms p99 %.2fms",
		res.RSSKiBPerConn, t.res.ConnectMS.P50, t.res.ConnectMS.P99)
	return nil
}
