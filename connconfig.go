package caddysse

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// Connections is how a route manages its connections: who each belongs to and how many a key may have, how long
// a stream may last, how fast clients may connect, what a page sees of heartbeats, and presence records. Its
// fields are part of the handler's JSON config.
type Connections struct {
	// ClientKey names who a connection belongs to: a template with placeholders, such as
	// "{http.auth.user.id}#{http.request.uri.query.pc}". Each placeholder must resolve to a non-empty value and the
	// key to at most 256 bytes: otherwise 400 when the value comes from the request, 403 otherwise. Default: none.
	ClientKey string `json:"client_key,omitempty"`
	// MaxPerKey caps a key's open connections; 0 means no cap. With 1 the cap holds across every Caddy node on the
	// same NATS; above 1 it holds per node. Needs ClientKey.
	MaxPerKey int `json:"max_per_key,omitempty"`
	// PerKeyMode is what happens over MaxPerKey: "replace" ends the oldest connection (it gets a final `replaced`
	// event), "reject" turns the new one away like max_connections. Default: "replace".
	PerKeyMode string `json:"per_key_mode,omitempty"`
	// MaxLifetime ends each stream after this long, ±10% jitter; the client reconnects and resumes. Default: none.
	MaxLifetime caddy.Duration `json:"max_lifetime,omitempty"`
	// HeartbeatEvent makes heartbeats a named event without an id (a page can see them; Last-Event-ID is
	// unchanged) instead of a comment. Default: comments.
	HeartbeatEvent string `json:"heartbeat_event,omitempty"`
	// ConnectEvent is sent once, without an id, when a stream opens. Default: none.
	ConnectEvent string `json:"connect_event,omitempty"`
	// MaxConnectRate caps new streams per second on this node for this route; clients over it are turned away
	// like max_connections. Default: 0 (no cap).
	MaxConnectRate float64 `json:"max_connect_rate,omitempty"`
	// PresenceSubject is a NATS subject template: with ClientKey, the node publishes a JSON record there when a
	// key's first connection on this node opens and when its last one closes. Default: none.
	PresenceSubject string `json:"presence_subject,omitempty"`
	// HTTP1Takeover: a plaintext HTTP/1.1 stream, once live, is taken over from Caddy's HTTP server after its
	// response head (a hijack) and held by a small pool of writers instead of its request's goroutine and
	// buffers, which makes an idle stream far cheaper and every delivery a little cheaper. Frames, heartbeats,
	// timeouts, ends and metrics are the same. The access log records such a stream when it is taken over
	// (status, head, bytes and time until then). Streams that are encoded (`encode`), buffered by a handler,
	// over TLS, HTTP/2 or HTTP/3, or on a wrapped listener stay on their request. Default: true.
	HTTP1Takeover *bool `json:"http1_takeover,omitempty"`
}

// takeoverOn reports whether HTTP1Takeover is on (its default).
func (c *Connections) takeoverOn() bool { return c.HTTP1Takeover == nil || *c.HTTP1Takeover }

func (c *Connections) applyDefaults() {
	if c.PerKeyMode == "" {
		c.PerKeyMode = perKeyReplace
	}
}

func (c *Connections) validate() error {
	switch {
	case c.MaxPerKey < 0:
		return fmt.Errorf("sse: max_per_key must not be negative, got %d", c.MaxPerKey)
	case c.MaxPerKey > 0 && c.ClientKey == "":
		return fmt.Errorf("sse: max_per_key %d needs client_key", c.MaxPerKey)
	case c.PresenceSubject != "" && c.ClientKey == "":
		return fmt.Errorf("sse: presence_subject %q needs client_key", c.PresenceSubject)
	case c.PerKeyMode != "" && c.PerKeyMode != perKeyReplace && c.PerKeyMode != perKeyReject:
		return fmt.Errorf("sse: max_per_key mode %q: want replace or reject", c.PerKeyMode)
	case c.MaxLifetime < 0:
		return fmt.Errorf("sse: max_lifetime must not be negative, got %s", time.Duration(c.MaxLifetime))
	case c.MaxConnectRate < 0:
		return fmt.Errorf("sse: max_connect_rate must not be negative, got %g", c.MaxConnectRate)
	}
	for name, v := range map[string]string{"heartbeat_event": c.HeartbeatEvent, "connect_event": c.ConnectEvent} {
		if !validFieldValue(v) {
			return fmt.Errorf("sse: %s %q must not contain CR, LF or NUL", name, v)
		}
	}
	if c.ClientKey != "" {
		if _, err := parseKeyTemplate(c.ClientKey); err != nil {
			return fmt.Errorf("sse: %w", err)
		}
	}
	return nil
}

// unmarshalConnectionOption reads one of the Connections subdirectives; known is false for any other option.
func (c *Connections) unmarshalConnectionOption(d *caddyfile.Dispenser, opt string) (known bool, err error) {
	switch opt {
	case "client_key":
		return true, oneArg(d, &c.ClientKey)
	case "max_per_key":
		args := d.RemainingArgs()
		if len(args) < 1 || len(args) > 2 {
			return true, d.Errf("sse: max_per_key wants <n> [replace|reject], got %q", args)
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 {
			return true, d.Errf("sse: max_per_key %q: want a whole number of at least 1", args[0])
		}
		c.MaxPerKey = n
		if len(args) == 2 {
			if args[1] != perKeyReplace && args[1] != perKeyReject {
				return true, d.Errf("sse: max_per_key mode %q: want replace or reject", args[1])
			}
			c.PerKeyMode = args[1]
		}
	case "max_lifetime":
		return true, durationArg(d, &c.MaxLifetime)
	case "heartbeat_event":
		return true, oneArg(d, &c.HeartbeatEvent)
	case "connect_event":
		return true, oneArg(d, &c.ConnectEvent)
	case "presence_subject":
		return true, oneArg(d, &c.PresenceSubject)
	case "http1_takeover":
		var v string
		if err := oneArg(d, &v); err != nil {
			return true, err
		}
		on, ok := map[string]bool{"on": true, "off": false}[v]
		if !ok {
			return true, d.Errf("sse: http1_takeover %q: want on or off", v)
		}
		c.HTTP1Takeover = &on
	case "max_connect_rate":
		var s string
		if err := oneArg(d, &s); err != nil {
			return true, err
		}
		rate, err := parseRate(s)
		if err != nil {
			return true, d.Errf("sse: max_connect_rate %q: %v", s, err)
		}
		c.MaxConnectRate = rate
	default:
		return false, nil
	}
	return true, nil
}

// parseRate reads "<n>/s" or "<n>/m" as events per second.
func parseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(s, "/")
	per := map[string]float64{"s": 1, "m": 60}[unit]
	n, err := strconv.ParseFloat(num, 64)
	if !ok || per == 0 || err != nil || n <= 0 {
		return 0, fmt.Errorf("want a rate such as 100/s or 600/m")
	}
	return n / per, nil
}
