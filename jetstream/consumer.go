package jetstream

import (
	"context"
	"errors"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

const consumerDropTimeout = 5 * time.Second

// dropConsumer deletes a consumer we are done with. Best effort: if it
// fails, the server removes the consumer after its inactivity threshold.
func (c *Conn) dropConsumer(stream, consumer string) {
	c.dropConsumerWithin(stream, consumer, consumerDropTimeout)
}

// dropConsumerWithin is dropConsumer giving up after d.
func (c *Conn) dropConsumerWithin(stream, consumer string, d time.Duration) {
	if !c.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.js.DeleteConsumer(ctx, stream, consumer); err != nil &&
		!errors.Is(err, natsjs.ErrConsumerNotFound) && !errors.Is(err, natsjs.ErrStreamNotFound) {
		c.log.Debug("could not delete consumer", zap.String("stream", stream), zap.String("consumer", consumer), zap.Error(err))
	}
}
