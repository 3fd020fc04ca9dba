package caddysse

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
)

// Ending streams at once when Caddy exits.
//
// watchServerShutdown (stream.go) listens to http.Server's shutdown, but HTTP/3 requests never go through an
// http.Server: Caddy stops its HTTP/3 servers with quic-go's graceful Shutdown, which sends GOAWAY and then waits
// for every open request, telling handlers nothing. With Caddy's default eternal grace period an open h3 event
// stream would hold the exit forever. Caddy emits a "stopping" event through its events app before it stops any
// app, and on exit caddy.Exiting() is already true then; so this config's handlers subscribe to it.

// exitWatch ends every stream of one config when Caddy exits.
type exitWatch struct {
	handlers []*Handler // this config's sse handlers, added while Caddy provisions them (one at a time)
}

// watchExit subscribes to the events app's "stopping" event. The events app is a standard Caddy module; loading
// it here adds it to the config if it is not configured.
func (a *App) watchExit(ctx caddy.Context) error {
	appVal, err := ctx.App("events")
	if err != nil {
		return fmt.Errorf("sse: loading the events app to learn when Caddy exits: %v", err)
	}
	events, ok := appVal.(*caddyevents.App)
	if !ok {
		return fmt.Errorf("sse: the events app is a %T, not Caddy's", appVal)
	}
	return events.On("stopping", &a.exit)
}

// Handle ends the streams when the config stops because Caddy exits; a reload is left to the handlers' own
// context (streams end spread over close_delay).
func (w *exitWatch) Handle(context.Context, caddy.Event) error {
	if !caddy.Exiting() {
		return nil
	}
	for _, h := range w.handlers {
		h.stop()
	}
	// Taken-over streams are not the HTTP server's: its shutdown does not wait for them, so without this the
	// process could be gone before they write the end of their responses.
	for _, h := range w.handlers {
		if h.sessions != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(h.WriteTimeout)+time.Second)
			h.sessions.DrainTakenOver(ctx)
			cancel()
		}
	}
	return nil
}

func (a *App) addHandler(h *Handler) {
	a.exit.handlers = append(a.exit.handlers, h)
}
