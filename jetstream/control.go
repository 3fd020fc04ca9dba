package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
)

// ErrNoListener: a request found nobody subscribed to its subject.
var ErrNoListener = errors.New("jetstream: nobody listens on the subject")

// Core NATS messaging between the nodes of a deployment (at most once, no
// JetStream): control messages such as "a newer connection for this key
// opened" and presence records.

// Listen calls fn for every message on subject until stop is called. reply
// answers a request (it does nothing for a plain message). fn runs on the
// subscription's own goroutine, one message at a time.
func (c *Conn) Listen(subject string, fn func(data []byte, reply func([]byte))) (stop func(), err error) {
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		fn(m.Data, func(answer []byte) {
			if m.Reply != "" {
				_ = m.Respond(answer)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: listen on %q: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Tell publishes data on subject for whoever listens now.
func (c *Conn) Tell(subject string, data []byte) error {
	if err := c.connected(); err != nil {
		return err
	}
	if err := c.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("jetstream: publish on %q: %w", subject, err)
	}
	return nil
}

// Ask sends a request on subject and returns the first answer. ErrNoListener
// when nobody is subscribed (the server says so at once), ErrNotConnected
// when NATS is down, ctx's error when nobody answered in time.
func (c *Conn) Ask(ctx context.Context, subject string, data []byte) ([]byte, error) {
	if err := c.connected(); err != nil {
		return nil, err
	}
	m, err := c.nc.RequestWithContext(ctx, subject, data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return nil, ErrNoListener
	case err != nil:
		return nil, fmt.Errorf("jetstream: request on %q: %w", subject, err)
	}
	return m.Data, nil
}
