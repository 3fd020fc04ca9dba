package caddysse

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// maxClientKeyBytes bounds a resolved client key: it is kept per connection and sent between nodes.
const maxClientKeyBytes = 256

// keyTemplate is a parsed client_key: literal text and placeholders, e.g. {http.auth.user.id}#{query.pc}.
type keyTemplate struct {
	raw  string
	keys []string // the placeholders, in order
}

func parseKeyTemplate(raw string) (keyTemplate, error) {
	if strings.TrimSpace(raw) == "" {
		return keyTemplate{}, fmt.Errorf("client_key is empty")
	}
	keys, err := placeholderKeys(raw)
	if err != nil {
		return keyTemplate{}, fmt.Errorf("client_key %q: %w", raw, err)
	}
	return keyTemplate{raw: raw, keys: keys}, nil
}

// resolve fills the template for one request. A placeholder that resolves to nothing, or a key over the
// bound, is refused: 400 when the client chose the value (query, header, cookie, path), 403 otherwise (an
// identity such as {http.auth.user.id} is missing, so the request cannot be told apart from others).
func (t keyTemplate) resolve(repl *caddy.Replacer) (string, error) {
	fromRequest := false
	for _, k := range t.keys {
		if isRequestPlaceholder(k) {
			fromRequest = true
		}
		if v := repl.ReplaceAll("{"+k+"}", ""); strings.TrimSpace(v) == "" {
			return "", caddyhttp.Error(statusFor(isRequestPlaceholder(k)),
				fmt.Errorf("sse: placeholder {%s} in client_key %q is empty", k, t.raw))
		}
	}
	key := repl.ReplaceAll(t.raw, "")
	switch {
	case len(key) > maxClientKeyBytes:
		return "", caddyhttp.Error(statusFor(fromRequest),
			fmt.Errorf("sse: client_key is %d bytes, at most %d allowed", len(key), maxClientKeyBytes))
	case strings.IndexFunc(key, unicode.IsControl) >= 0:
		return "", caddyhttp.Error(statusFor(fromRequest),
			fmt.Errorf("sse: client_key %q contains control characters", key))
	}
	return key, nil
}

// isRequestPlaceholder: the client sets this value directly.
func isRequestPlaceholder(key string) bool { return strings.HasPrefix(key, "http.request.") }

func statusFor(fromRequest bool) int {
	if fromRequest {
		return http.StatusBadRequest
	}
	return http.StatusForbidden
}
