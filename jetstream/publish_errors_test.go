package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Each way a publish fails gets the error that says why.
func TestPublishError(t *testing.T) {
	found := func() (string, error) { return "ORDERS", nil }
	notFound := func() (string, error) { return "", natsjs.ErrStreamNotFound }
	noJS := func() (string, error) { return "", natsjs.ErrJetStreamNotEnabled }
	probeTimeout := func() (string, error) { return "", context.DeadlineExceeded }
	tooBig := &natsjs.APIError{Code: 400, ErrorCode: natsjs.JSErrCodeStreamMessageExceedsMaximum, Description: "message size exceeds maximum allowed"}
	other := &natsjs.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}
	tests := []struct {
		name      string
		err       error
		probe     func() (string, error)
		want      error
		wantInMsg string
	}{
		{"no responders, a stream captures the subject: no leader", natsjs.ErrNoStreamResponse, found, ErrNoLeader, `stream "ORDERS" captures "o.1"`},
		{"no responders, no stream captures it", natsjs.ErrNoStreamResponse, notFound, ErrNoStream, `no stream captures subject "o.1"`},
		{"no responders, JetStream off", natsjs.ErrNoStreamResponse, noJS, ErrUnavailable, "jetstream not enabled"},
		{"no responders, JetStream silent", natsjs.ErrNoStreamResponse, probeTimeout, ErrUnavailable, "deadline exceeded"},
		{"JetStream not enabled for the account", fmt.Errorf("nats: %w", natsjs.ErrJetStreamNotEnabledForAccount), nil, ErrUnavailable, ""},
		{"timeout", context.DeadlineExceeded, nil, ErrPublishTimeout, "may have been stored"},
		{"nats timeout", nats.ErrTimeout, nil, ErrPublishTimeout, ""},
		{"connection closed", nats.ErrConnectionClosed, nil, ErrNotConnected, ""},
		{"too large", fmt.Errorf("nats: %w", tooBig), nil, ErrTooLarge, "message size exceeds"},
		{"another API error is passed on", fmt.Errorf("nats: %w", other), nil, other, "maximum messages exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probe := tt.probe
			if probe == nil {
				probe = func() (string, error) { t.Fatal("probed for no reason"); return "", nil }
			}
			got := publishError("o.1", tt.err, probe)
			if !errors.Is(got, tt.want) || !strings.Contains(got.Error(), tt.wantInMsg) {
				t.Fatalf("publishError = %v, want %v containing %q", got, tt.want, tt.wantInMsg)
			}
		})
	}
}

// Against real servers: one without JetStream, and a subject someone receives but nobody acknowledges.
func TestPublishErrorsFromServers(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(waitLong) {
		t.Fatal("server not ready")
	}
	c := connect(t, ConnConfig{URLs: []string{srv.ClientURL()}})
	waitConnected(t, c)
	if _, _, err := c.Publish(ctxFor(t), "nojs.x", "", "", []byte("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish without JetStream: %v, want ErrUnavailable", err)
	}

	silent, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	if _, err := silent.Subscribe("silent.x", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := silent.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Publish(ctx, "silent.x", "", "", []byte("x")); !errors.Is(err, ErrPublishTimeout) {
		t.Fatalf("unacknowledged publish: %v, want ErrPublishTimeout", err)
	}
}
