package jetstream

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestControlMessaging(t *testing.T) {
	e, a := inProcess(t)
	b := connect(t, ConnConfig{Embedded: e})
	waitConnected(t, b)

	if _, err := a.Ask(ctxFor(t), "ctl.nobody", []byte("?")); !errors.Is(err, ErrNoListener) {
		t.Fatalf("Ask with no listener = %v, want ErrNoListener", err)
	}

	got := make(chan string, 1024)
	stop, err := b.Listen("ctl.key", func(data []byte, reply func([]byte)) {
		got <- string(data)
		reply([]byte("held"))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A subscription reaches the server asynchronously: ask until it answers.
	deadline := time.Now().Add(waitLong)
	for {
		answer, err := a.Ask(ctxFor(t), "ctl.key", []byte("who"))
		if err == nil {
			if string(answer) != "held" {
				t.Fatalf("answer %q, want held", answer)
			}
			break
		}
		if !errors.Is(err, ErrNoListener) || time.Now().After(deadline) {
			t.Fatalf("Ask: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.Tell("ctl.key", []byte("replace")); err != nil {
		t.Fatal(err)
	}
	for v := ""; v != "replace"; {
		select {
		case v = <-got:
			if v != "who" && v != "replace" {
				t.Fatalf("listener got %q", v)
			}
		case <-time.After(waitLong):
			t.Fatal("listener never got the plain message")
		}
	}
	stop()
	waitFor(t, "the unsubscription to reach the server", func() bool {
		ctx, cancel := context.WithTimeout(ctxFor(t), time.Second)
		defer cancel()
		_, err := a.Ask(ctx, "ctl.key", nil)
		return errors.Is(err, ErrNoListener)
	})
}
