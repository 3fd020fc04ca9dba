package jetstream

import (
	"fmt"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

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
