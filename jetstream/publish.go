package jetstream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Publish stores one event through JetStream and returns where it landed.
// eventType, when not empty, travels in the eventHeader header. Without a
// stream capturing subject the error is ErrNoStream; see publishError for
// the others.
func (c *Conn) Publish(ctx context.Context, subject, eventHeader, eventType string, data []byte) (stream string, seq uint64, err error) {
	msg := &nats.Msg{Subject: subject, Data: data}
	if eventType != "" {
		if eventHeader == "" {
			return "", 0, errors.New("jetstream: an event type needs an event header name")
		}
		msg.Header = nats.Header{}
		msg.Header.Set(eventHeader, eventType)
	}
	if err := c.connected(); err != nil {
		return "", 0, err
	}
	ack, err := c.js.PublishMsg(ctx, msg)
	if err != nil {
		return "", 0, publishError(subject, err, func() (string, error) {
			// a fresh, short context: the publish may have used up the caller's
			ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
			defer cancel()
			return c.js.StreamNameBySubject(ctx, subject)
		})
	}
	return ack.Stream, ack.Sequence, nil
}

// probeTimeout bounds the request that finds out why a publish got no answer.
const probeTimeout = 2 * time.Second

// publishError says why a publish failed, as one of the package's errors where one fits. "No responders"
// covers three causes, told apart by asking JetStream which stream captures the subject (streamFor): none
// (ErrNoStream), one that did not answer (ErrNoLeader), or no answer at all (ErrUnavailable).
func publishError(subject string, err error, streamFor func() (string, error)) error {
	var apiErr *natsjs.APIError
	switch {
	case errors.Is(err, natsjs.ErrNoStreamResponse):
		stream, perr := streamFor()
		switch {
		case perr == nil:
			return fmt.Errorf("%w: stream %q captures %q", ErrNoLeader, stream, subject)
		case errors.Is(perr, natsjs.ErrStreamNotFound):
			return fmt.Errorf("%w: no stream captures subject %q", ErrNoStream, subject)
		default:
			return fmt.Errorf("%w: publishing to %q: %w", ErrUnavailable, subject, perr)
		}
	case errors.Is(err, natsjs.ErrJetStreamNotEnabled), errors.Is(err, natsjs.ErrJetStreamNotEnabledForAccount):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return fmt.Errorf("%w: publishing to %q; the event may have been stored", ErrPublishTimeout, subject)
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrConnectionReconnecting):
		return fmt.Errorf("%w: %w", ErrNotConnected, err)
	case errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamMessageExceedsMaximum:
		return fmt.Errorf("%w: publishing to %q: %w", ErrTooLarge, subject, err)
	}
	return fmt.Errorf("jetstream: publish to %q: %w", subject, err)
}
