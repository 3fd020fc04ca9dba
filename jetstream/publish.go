package jetstream

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Publish stores one event through JetStream and returns where it landed.
// eventType, when not empty, travels in the eventHeader header. Without a
// stream capturing subject the error is ErrNoStream.
func (c *Conn) Publish(ctx context.Context, subject, eventHeader, eventType string, data []byte) (stream string, seq uint64, err error) {
	msg := &nats.Msg{Subject: subject, Data: data}
	if eventType != "" {
		if eventHeader == "" {
			return "", 0, errors.New("jetstream: an event type needs an event header name")
		}
		msg.Header = nats.Header{}
		msg.Header.Set(eventHeader, eventType)
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if errors.Is(err, natsjs.ErrNoStreamResponse) {
		return "", 0, fmt.Errorf("%w: nothing captures subject %q", ErrNoStream, subject)
	}
	if err != nil {
		return "", 0, fmt.Errorf("jetstream: publish to %q: %w", subject, err)
	}
	return ack.Stream, ack.Sequence, nil
}
