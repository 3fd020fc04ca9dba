package caddysse

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/hub"
	"github.com/caddy-sse/caddy-sse/jetstream"
	"github.com/caddy-sse/caddy-sse/session"
)

// Clients reconnecting together with a cursor older than the feed's memory share one JetStream read whatever
// their number (their Uptos a few live events apart), and each gets every event once, in order.
func TestFeedReplaySharesOneRead(t *testing.T) {
	const total = 3000
	f, conn, state, ctx := splitFeed(t, total, func(i int) (string, []byte) { return "", []byte(fmt.Sprint(i)) })
	after := state.LastSeq + 100 // before the memory's floor (state.LastSeq + 1000)
	last := state.LastSeq + total

	before := conn.ReplayConsumersCreated()
	const clients = 50
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Go(func() {
			upto := last - uint64(i%10) // a few live events apart
			var got []uint64
			_, err := f.Replay(ctx, session.ReplayRequest{Epoch: state.Epoch, Patterns: []string{"split.>"}, After: after, Upto: upto},
				func(b session.Batch) error {
					for _, m := range b.Messages {
						got = append(got, m.Seq)
					}
					for _, e := range b.Events {
						got = append(got, e.Seq)
					}
					return nil
				})
			if err != nil {
				errs <- err
				return
			}
			for j, seq := range got {
				if seq != after+1+uint64(j) {
					errs <- fmt.Errorf("client %d: event %d is seq %d, want %d", i, j, seq, after+1+uint64(j))
					return
				}
			}
			if uint64(len(got)) != upto-after {
				errs <- fmt.Errorf("client %d: %d events, want %d", i, len(got), upto-after)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := conn.ReplayConsumersCreated() - before; n > 3 {
		t.Fatalf("%d replay consumers for %d clients of one range, want a handful", n, clients)
	}
}

// splitFeed publishes total events (eventOf gives each its type and data) to the SPLIT stream, and returns a
// feed whose memory holds the last 2000 of them, as if its tail had dispatched them all; state is the stream
// before the events.
func splitFeed(t *testing.T, total int, eventOf func(i int) (string, []byte)) (*feed, *jetstream.Conn, jetstream.StreamState, context.Context) {
	t.Helper()
	loadSite(t, `sse /split split.> {
		stream SPLIT
	}`) // the embedded server, and the stream
	conn, err := jetstream.Connect(jetstream.ConnConfig{URLs: []string{"nats://" + embeddedAddr}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	state, err := conn.EnsureStream(ctx, jetstream.StreamConfig{Name: "SPLIT", Subjects: []string{"split.>"}})
	if err != nil {
		t.Fatal(err)
	}
	f := &feed{hub: hub.New(hub.Config{RingSize: 2000}), tail: jetstream.TailConfig{
		Stream: jetstream.StreamConfig{Name: "SPLIT"}, EventHeader: defaultEventHeader}}
	f.conn = &sharedConn{conn: conn}
	f.conn.once.Do(func() {})
	f.hub.Begin(state.Epoch, state.LastSeq)
	for i := range total {
		typ, data := eventOf(i)
		_, seq, err := conn.Publish(ctx, "split.x", defaultEventHeader, typ, data)
		if err != nil {
			t.Fatal(err)
		}
		f.hub.Publish(seq, "split.x", typ, data)
	}
	return f, conn, state, ctx
}
