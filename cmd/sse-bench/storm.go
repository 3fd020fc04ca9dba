package main

import (
	"context"
	"time"
)

// runStorm drops every client at once, publishes K events while they are
// away, and lets them all reconnect at once with Last-Event-ID while the live
// feed goes on. It measures the time until every client holds every event,
// loss and duplicates (must be 0), retries, and JetStream consumers created.
func runStorm(ctx context.Context, t *targetRun) error {
	o := t.o
	if err := t.connect(ctx); err != nil {
		return err
	}
	// Warm up so every client has an event id to resume from.
	if err := t.pub.burst(ctx, max(o.warmup, 1)); err != nil {
		return err
	}
	warm, err := t.flush(ctx)
	if err != nil {
		return err
	}
	if _, _, err := t.waitCaughtUp(ctx, warm, o.drain); err != nil {
		return err
	}
	res := &stormResult{Warmup: max(o.warmup, 1), Missed: o.missed, LiveRate: o.rate}
	res.ConsumersBefore = countConsumers(ctx, t.nc, t.stream)

	t.log.Printf("dropping %d clients", o.clients)
	dropStart := time.Now()
	if err := t.g.send(request{Op: "drop"}); err != nil {
		return err
	}
	if err := t.waitOpen(ctx, 0, 30*time.Second); err != nil {
		return err
	}
	res.DropS = seconds(time.Since(dropStart))
	if err := t.pub.burst(ctx, o.missed); err != nil {
		return err
	}
	target, err := t.flush(ctx)
	if err != nil {
		return err
	}

	consumers := watchConsumers(ctx, t.nc, t.stream, 100*time.Millisecond)
	created, err := watchConsumerCreations(t.nc, t.stream)
	if err != nil {
		return err
	}
	var metrics0 scrapedMetrics
	if o.metricsURL != "" && t.name != "bare" {
		if metrics0, err = scrapeMetrics(ctx, o.metricsURL); err != nil {
			return err
		}
	}
	turned0 := t.turnAways()
	disc0, err := t.disconnects()
	if err != nil {
		return err
	}
	_, cpu0 := t.server.read()
	tool0 := t.toolCPU()
	t.log.Printf("%d events published while away; reconnecting all at once", o.missed)
	if err := t.g.send(request{Op: "reconnect", N: target}); err != nil {
		return err
	}
	reconnectStart := time.Now()
	live := make(chan error, 1)
	go func() {
		_, err := t.pub.paced(ctx, o.rate, o.duration, nil)
		live <- err
	}()
	st, _, err := t.waitCaughtUp(ctx, target, o.stormWait)
	if err != nil {
		return err
	}
	t.log.Printf("caught up (as seen by polling) after %.2fs, %d turn-aways", time.Since(reconnectStart).Seconds(), st.TurnAways-turned0)
	if err := <-live; err != nil {
		return err
	}
	last, err := t.flush(ctx)
	if err != nil {
		return err
	}
	if _, _, err := t.waitCaughtUp(ctx, last, o.drain); err != nil {
		return err
	}
	_, cpu1 := t.server.read()
	res.ServerCPUS, res.ToolCPUS = seconds(cpu1-cpu0), seconds(t.toolCPU()-tool0)
	res.ConsumersMax, _ = consumers.result()
	res.ConsumersAfter = countConsumers(ctx, t.nc, t.stream)
	res.ConsumersCreated = created.result(t.nc)
	if metrics0 != nil {
		metrics1, err := scrapeMetrics(ctx, o.metricsURL)
		if err != nil {
			return err
		}
		res.ServerMetrics = metrics1.delta(metrics0)
	}

	rep, err := t.report(last)
	if err != nil {
		return err
	}
	res.Published = last
	res.CatchUpMS = msDist(rep.CatchUp)
	res.AllCaughtUpS = round3(float64(rep.CatchUp.Max) / float64(time.Second))
	res.NotCaughtUp = rep.NotCaughtUp
	res.Lost, res.Duplicates, res.OutOfOrder, res.Resets = rep.Missing, rep.Duplicates, rep.OutOfOrder, rep.Resets
	res.Holes, res.HoleSamples = rep.Holes, rep.HoleSamples
	res.MultiAttempt, res.Attempts = rep.MultiAttempt, rep.Attempts
	res.Disconnects = rep.Disconnects - disc0
	res.ReconnectMS = msDist(rep.Reconnect)
	res.AdmittedMS = msDist(rep.Admitted)
	res.TurnAways, res.TurnAwaysConnect = rep.RoundTurnAways, rep.TurnAways-rep.RoundTurnAways
	res.TurnedClients, res.TurnAwayBad = rep.TurnedClients, rep.TurnAwayBad
	res.TurnedPerClient = distIn(rep.TurnedPer, 1)
	res.TurnAwayEndMS, res.TurnAwayRetryMS = msDist(rep.TurnAwayEnd), msDist(rep.TurnAwayRetry)
	t.res.Storm = res
	t.log.Printf("storm: all caught up in %.3fs (p50 %.1fms), %d not caught up, lost %d (%d holes) dup %d ooo %d, %d needed >1 attempt, %d disconnects, "+
		"%d turn-aways (%d clients, max %g each), consumers %d→max %d→%d, %d created, server %v",
		res.AllCaughtUpS, res.CatchUpMS.P50, res.NotCaughtUp, res.Lost, res.Holes, res.Duplicates, res.OutOfOrder, res.MultiAttempt, res.Disconnects,
		res.TurnAways, res.TurnedClients, res.TurnedPerClient.Max,
		res.ConsumersBefore, res.ConsumersMax, res.ConsumersAfter, res.ConsumersCreated, res.ServerMetrics)
	return nil
}

// disconnects is the fleet's count of streams the server ended unasked so far.
func (t *targetRun) disconnects() (int64, error) {
	rep, err := t.g.report(0)
	return rep.Disconnects, err
}

// turnAways is the fleet's count of turned-away answers so far (0 when the status cannot be read).
func (t *targetRun) turnAways() int64 {
	st, err := t.g.status(0)
	if err != nil {
		return 0
	}
	return st.TurnAways
}
