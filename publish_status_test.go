package caddysse

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

// What each publish failure answers.
func TestPublishStatus(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{jetstream.ErrNoLeader, http.StatusServiceUnavailable},
		{jetstream.ErrUnavailable, http.StatusServiceUnavailable},
		{jetstream.ErrNoStream, http.StatusServiceUnavailable},
		{jetstream.ErrNotConnected, http.StatusServiceUnavailable},
		{fmt.Errorf("wrapped: %w", jetstream.ErrPublishTimeout), http.StatusGatewayTimeout},
		{jetstream.ErrTooLarge, http.StatusRequestEntityTooLarge},
		{errors.New("jetstream: publish to \"a\": maximum messages exceeded"), http.StatusServiceUnavailable},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			if got := publishStatus(tc.err); got != tc.want {
				t.Fatalf("publishStatus = %d, want %d", got, tc.want)
			}
		})
	}
}
