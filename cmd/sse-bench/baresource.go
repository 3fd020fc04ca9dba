package main

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Where the bare server takes its events from. "core" (the default) is a core NATS subscription: it sees each
// message as the server receives it, before JetStream stores it. "jetstream" is an ordered consumer of new
// messages on the stream capturing the subject: it sees each one only once stored (and, on a server with
// sync always, on disk), as the module's tail does, so a latency ratio prices the fan-out alone.
const (
	bareSourceCore      = "core"
	bareSourceJetStream = "jetstream"
)

// subscribeBare feeds publish with every message on subject from source; stop ends it.
func subscribeBare(ctx context.Context, nc *nats.Conn, source, subject string, publish func([]byte)) (stop func(), err error) {
	switch source {
	case bareSourceCore, "":
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) { publish(m.Data) })
		if err != nil {
			return nil, fmt.Errorf("subscribe %q: %w", subject, err)
		}
		_ = sub.SetPendingLimits(1<<20, 1<<30)
		return func() { _ = sub.Unsubscribe() }, nc.Flush()
	case bareSourceJetStream:
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		stream, err := js.StreamNameBySubject(rctx, subject)
		if err != nil {
			return nil, fmt.Errorf("no stream captures %q: %w", subject, err)
		}
		cons, err := js.OrderedConsumer(rctx, stream, jetstream.OrderedConsumerConfig{
			FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("ordered consumer on %s: %w", stream, err)
		}
		cc, err := cons.Consume(func(m jetstream.Msg) { publish(m.Data()) })
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", stream, err)
		}
		return cc.Stop, nil
	}
	return nil, fmt.Errorf("bare source %q: want %s or %s", source, bareSourceCore, bareSourceJetStream)
}
