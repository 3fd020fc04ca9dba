package main

import (
	"context"
	"time"

	"github.com/caddy-sse/caddy-sse/internal/sseclient"
)

// runSlow measures the healthy clients' latency while S% of the clients stop
// reading with their sockets open, and how long the server takes to cut each
// stalled client. Phase "before": everyone reads for D. Phase "during": the
// slow clients stall and publishing goes on for at least D, until every
// stalled client is cut or -cut-wait passes.
func runSlow(ctx context.Context, t *targetRun) error {
	o := t.o
	if err := t.connect(ctx); err != nil {
		return err
	}
	t.log.Printf("phase before: %.0f events/s for %s, everyone reading", o.rate, o.duration)
	if _, err := t.pub.paced(ctx, o.rate, o.duration, nil); err != nil {
		return err
	}
	before, err := t.flush(ctx)
	if err != nil {
		return err
	}
	if _, _, err := t.waitCaughtUp(ctx, before, o.drain); err != nil {
		return err
	}

	if err := t.g.send(request{Op: "phase", Phase: 1}); err != nil {
		return err
	}
	if err := t.g.send(request{Op: "stall"}); err != nil {
		return err
	}
	stallStart := time.Now()
	t.log.Printf("phase during: %.0f%% of clients stopped reading", o.slowPercent)
	stop := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		defer close(stop)
		for sleepCtx(ctx, 50*time.Millisecond) {
			st, err := t.g.status(0)
			if err != nil {
				return
			}
			since := time.Since(stallStart)
			if (st.Cut >= st.Stalled && since >= o.duration) || since >= max(o.cutWait, o.duration) {
				return
			}
		}
	}()
	_, err = t.pub.paced(ctx, o.rate, max(o.cutWait, o.duration)+time.Minute, stop)
	<-watchDone
	if err != nil {
		return err
	}
	during := time.Since(stallStart)
	last, err := t.flush(ctx)
	if err != nil {
		return err
	}
	if _, _, err := t.waitCaughtUp(ctx, last, o.drain); err != nil {
		return err
	}
	rep, err := t.report(last)
	if err != nil {
		return err
	}
	res := &slowResult{
		SlowPercent: o.slowPercent, Stalled: rep.Stalled, Cut: rep.Cut, NotCut: rep.Stalled - rep.Cut,
		CutS: sDist(rep.CutTime), FullS: sDist(rep.FullTime), BlockedS: sDist(rep.BlockedTime),
		SendQKiB: distIn(rep.SendQ, 1024), Healthy: rep.Healthy,
		LatencyBeforeMS: msDist(rep.Latency[0]), LatencyDuringMS: msDist(rep.Latency[1]),
		HealthyMissing: rep.Missing, Duplicates: rep.Duplicates, OutOfOrder: rep.OutOfOrder,
		HealthyDisconnects: rep.Disconnects, Resets: rep.Resets, Published: last, DuringS: seconds(during),
	}
	// What a stalled client absorbed before the cut (kernel buffers on both
	// ends plus the server's queue), estimated from the publish rate.
	res.EventBytes = len(sseclient.AppendPayload(nil, t.run, last, time.Now().UnixNano(), t.pub.pad))
	res.KiBBeforeCutP50 = round3(res.CutS.P50 * o.rate * float64(res.EventBytes) / 1024)
	if res.NotCut > 0 {
		t.log.Printf("%d stalled clients not cut within %s: a stalled loopback socket can absorb up to tcp_wmem's maximum "+
			"before the server's writes block; raise -payload, -rate or -cut-wait", res.NotCut, o.cutWait)
	}
	if res.LatencyBeforeMS.P99 > 0 {
		res.P99DuringOverBefore = round3(res.LatencyDuringMS.P99 / res.LatencyBeforeMS.P99)
	}
	t.res.Slow = res
	t.log.Printf("slow: %d/%d stalled clients cut (p50 %.2fs, max %.2fs; send queue full after p50 %.2fs, then cut within max %.2fs); healthy p99 %.2fms before, %.2fms during; missing %d",
		res.Cut, res.Stalled, res.CutS.P50, res.CutS.Max, res.FullS.P50, res.BlockedS.Max,
		res.LatencyBeforeMS.P99, res.LatencyDuringMS.P99, res.HealthyMissing)
	return nil
}
