package caddysse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/jetstream"
	"github.com/caddy-sse/caddy-sse/subject"
)

const (
	// maxPublishBytes matches NATS's default maximum payload.
	maxPublishBytes = 1 << 20
	publishTimeout  = 10 * time.Second
	// eventTypeParam names the query parameter that sets the published event's type.
	eventTypeParam = "event"
)

// publishAnswer is the JSON body of a successful publish.
type publishAnswer struct {
	ID      string `json:"id"`
	Subject string `json:"subject"`
	Stream  string `json:"stream"`
	Seq     uint64 `json:"seq"`
}

// servePublish turns a POST body, verbatim, into one event on the route's concrete subject.
func (h *Handler) servePublish(w http.ResponseWriter, r *http.Request) error {
	subject, err := h.publishSubject(r)
	if err != nil {
		return err
	}
	eventType := r.URL.Query().Get(eventTypeParam)
	if !validFieldValue(eventType) {
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("sse: event type must not contain CR, LF or NUL"))
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPublishBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return caddyhttp.Error(http.StatusRequestEntityTooLarge,
				fmt.Errorf("sse: event body over %d bytes", maxPublishBytes))
		}
		return caddyhttp.Error(http.StatusBadRequest, fmt.Errorf("sse: reading event body: %w", err))
	}
	ctx, cancel := context.WithTimeout(r.Context(), publishTimeout)
	defer cancel()
	pub, err := h.feed.publish(ctx, subject, eventType, data)
	if err != nil {
		status := publishStatus(err)
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1") // elections and reconnects take seconds
		}
		return caddyhttp.Error(status, err)
	}
	if pub.stream != h.Stream {
		h.logger.Warn("published event landed in another stream; this route's clients will not see it",
			zap.String("subject", subject), zap.String("stream", pub.stream), zap.String("expected", h.Stream))
		return caddyhttp.Error(http.StatusConflict,
			fmt.Errorf("sse: subject %q is stored by stream %q, not %q", subject, pub.stream, h.Stream))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return json.NewEncoder(w).Encode(publishAnswer{ID: eventid.Format(pub.epoch, pub.seq), Subject: subject, Stream: pub.stream, Seq: pub.seq})
}

// publishStatus is the HTTP status for a failed publish. Most failures are NATS or JetStream being unavailable
// for a while (reconnecting, a leader election, a stream being recreated): 503, to be retried. A publish that
// got no acknowledgement in time may have been stored: 504, so the caller knows to check before resending.
func publishStatus(err error) int {
	switch {
	case errors.Is(err, jetstream.ErrPublishTimeout):
		return http.StatusGatewayTimeout
	case errors.Is(err, jetstream.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusServiceUnavailable
}

// publishSubject is the one concrete subject a POST publishes to: the topic_param value if given (inside the
// templates), else the route's only template. Wildcards are refused: an event has one subject.
func (h *Handler) publishSubject(r *http.Request) (string, error) {
	subjects, err := h.clientSubjects(r)
	if err != nil {
		return "", err
	}
	if len(subjects) != 1 {
		return "", caddyhttp.Error(http.StatusBadRequest,
			fmt.Errorf("sse: publish needs exactly one subject; name it with %s", h.topicParamName()))
	}
	if !subject.Valid(subjects[0]) {
		return "", caddyhttp.Error(http.StatusBadRequest,
			fmt.Errorf("sse: cannot publish to %q: wildcards are not allowed, name a concrete subject with %s",
				subjects[0], h.topicParamName()))
	}
	return subjects[0], nil
}

func (h *Handler) topicParamName() string {
	if h.TopicParam == "" {
		return "topic_param"
	}
	return "?" + h.TopicParam + "="
}
