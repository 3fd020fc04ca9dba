package jetstream

import (
	"fmt"
	"strings"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// warnDifferences logs the differences between a stream and its configured options, once for as long as they
// stay the same: the tail checks the stream at every restart, and one warning says it all.
func (c *Conn) warnDifferences(log *zap.Logger, stream string, diffs []string, managed bool) {
	key := strings.Join(diffs, "; ")
	// no differences also replaces the last ones: once the stream is edited or recreated, a later one warns again
	if prev, _ := c.streamWarnings.Swap(stream, key); key == "" || prev == key {
		return
	}
	log.Warn("the existing stream's config differs from the configured stream options; using the stream as it is",
		zap.Strings("differences", diffs), zap.Bool("created_by_caddy_sse", managed))
}

// streamDifferences lists, one entry per option, where an existing stream's config differs from the one asked
// for. A stream caddy-sse created is compared on every option (defaults included: they are what it was created
// with). Anyone else's stream only on the options the caller set, so a stream made by hand with its own limits
// does not warn at every start about defaults nobody asked for. Storage can only be told apart when memory was
// asked for, since file is both the zero value and the default.
func streamDifferences(have natsjs.StreamConfig, asked StreamConfig, managed bool) []string {
	want := asked.withDefaults()
	var diffs []string
	if (managed || asked.Replicas != 0) && have.Replicas != want.Replicas {
		diffs = append(diffs, fmt.Sprintf("replicas %d, configured %d", have.Replicas, want.Replicas))
	}
	if (managed || asked.MaxAge != 0) && have.MaxAge != want.MaxAge {
		diffs = append(diffs, fmt.Sprintf("max age %s, configured %s", ageString(have.MaxAge), ageString(want.MaxAge)))
	}
	if (managed || asked.MaxBytes != 0) && have.MaxBytes != want.MaxBytes {
		diffs = append(diffs, fmt.Sprintf("max bytes %s, configured %s", bytesString(have.MaxBytes), bytesString(want.MaxBytes)))
	}
	wantStorage := natsjs.FileStorage
	if want.Memory {
		wantStorage = natsjs.MemoryStorage
	}
	if (managed || asked.Memory) && have.Storage != wantStorage {
		diffs = append(diffs, fmt.Sprintf("storage %s, configured %s", have.Storage, wantStorage))
	}
	return diffs
}

func ageString(d time.Duration) string {
	if d <= 0 {
		return "unlimited"
	}
	return d.String()
}

func bytesString(n int64) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprintf("%d", n)
}
