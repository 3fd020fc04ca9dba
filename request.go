package caddysse

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/caddy-sse/caddy-sse/subject"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// maxTopics bounds how many topic_param values one request may carry.
const maxTopics = 32

// allowedSubjects resolves the route's templates for this request.
func (h *Handler) allowedSubjects(r *http.Request) ([]string, error) {
	repl, _ := r.Context().Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if repl == nil {
		repl = caddy.NewReplacer()
	}
	subjects := make([]string, 0, len(h.templates))
	for _, t := range h.templates {
		s, err := t.resolve(repl)
		if err != nil {
			return nil, err
		}
		subjects = append(subjects, s)
	}
	return subjects, nil
}

// clientSubjects is what this request may receive: the resolved templates, or the client's topics when it
// names some with topic_param. A topic that is not a valid subject pattern gets 400; one outside every template
// gets 403.
func (h *Handler) clientSubjects(r *http.Request) ([]string, error) {
	allowed, err := h.allowedSubjects(r)
	if err != nil {
		return nil, err
	}
	if h.TopicParam == "" {
		return allowed, nil
	}
	topics := r.URL.Query()[h.TopicParam]
	if len(topics) == 0 {
		return allowed, nil
	}
	if len(topics) > maxTopics {
		return nil, caddyhttp.Error(http.StatusBadRequest,
			fmt.Errorf("sse: %d %s values, at most %d allowed", len(topics), h.TopicParam, maxTopics))
	}
	var out []string
	for _, t := range topics {
		if !subject.ValidPattern(t) {
			return nil, caddyhttp.Error(http.StatusBadRequest,
				fmt.Errorf("sse: %s %q is not a valid subject", h.TopicParam, t))
		}
		if !subject.CoveredByAny(allowed, t) {
			return nil, caddyhttp.Error(http.StatusForbidden,
				fmt.Errorf("sse: %s %q is outside the subjects this route allows", h.TopicParam, t))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}
