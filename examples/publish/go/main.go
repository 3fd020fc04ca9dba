// Command go publishes one event to JetStream the way an application should for caddy-sse: the SSE event type
// in the Sse-Event header, a Nats-Msg-Id so that a retried publish is stored once, and retries on the errors
// where the outcome is unknown or the stream is not there yet.
//
//	go run ./examples/publish/go -subject orders.42.shipped -event order-shipped -msg-id order-42-shipped '{"order":42}'
//
// It prints the acknowledgement as JSON: {"stream":"ORDERS","seq":7,"duplicate":false}. A repeated msg-id
// within the stream's duplicate window (2 minutes by default) is acknowledged as a duplicate and not stored
// again, so clients see the event once. It exits 1 when the event could not be stored.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server (the embedded one of Caddyfile.example listens on nats://127.0.0.1:4222)")
	subject := flag.String("subject", "", "subject to publish to, e.g. orders.42.shipped (required)")
	event := flag.String("event", "", "SSE event type, sent in the Sse-Event header (empty: a plain message)")
	msgID := flag.String("msg-id", "", "Nats-Msg-Id: a name for this event that stays the same across retries (e.g. order-42-shipped)")
	stream := flag.String("stream", "", "refuse unless this stream stores the subject (e.g. ORDERS)")
	attempts := flag.Int("attempts", 5, "how many times to try")
	flag.Parse()
	if *subject == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: go [-url nats://...] -subject S [-event T] [-msg-id ID] [-stream NAME] DATA")
		os.Exit(2)
	}

	nc, err := nats.Connect(*url, nats.Name("caddy-sse example publisher"), nats.Timeout(5*time.Second))
	if err != nil {
		fail(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		fail(err)
	}

	msg := nats.NewMsg(*subject)
	msg.Data = []byte(flag.Arg(0))
	if *event != "" {
		msg.Header.Set("Sse-Event", *event)
	}
	var opts []jetstream.PublishOpt
	if *msgID != "" {
		opts = append(opts, jetstream.WithMsgID(*msgID))
	}
	if *stream != "" {
		opts = append(opts, jetstream.WithExpectStream(*stream))
	}
	ack, err := publish(js, msg, *attempts, opts...)
	if err != nil {
		fail(err)
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"stream": ack.Stream, "seq": ack.Sequence, "duplicate": ack.Duplicate})
}

// publish tries until the stream acknowledges. A timeout leaves the outcome unknown (the message may be stored
// and only the ack lost); with a Nats-Msg-Id the retry is then safe, without one it may store the event twice.
// "No responders" means no stream stores the subject (yet: caddy-sse creates its stream when Caddy starts).
// Other errors (a wrong expected stream, a message over the size limit) will not change by retrying.
func publish(js jetstream.JetStream, msg *nats.Msg, attempts int, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ack, err := js.PublishMsg(ctx, msg, opts...)
		cancel()
		retriable := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
			errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders)
		if err == nil || !retriable || attempt >= attempts {
			return ack, err
		}
		fmt.Fprintf(os.Stderr, "attempt %d: %v; retrying in %s\n", attempt, err, wait)
		time.Sleep(wait)
		wait *= 2
	}
}

func fail(err error) {
	if errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) {
		err = fmt.Errorf("%w (no JetStream stream stores this subject: is Caddy running with a route for it?)", err)
	}
	fmt.Fprintln(os.Stderr, "publish failed:", err)
	os.Exit(1)
}
