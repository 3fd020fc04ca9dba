// Command go-sse reads a caddy-sse stream with github.com/tmaxmax/go-sse, a Go client nobody here wrote, and
// prints every event, whatever its type, as one JSON line {"id","type","data"}.
//
//	go run ./examples/clients/go-sse -url http://localhost:8080/news [-header 'Authorization: Bearer x']
//
// go-sse reconnects by itself when the stream ends, sending Last-Event-ID and waiting the server's retry:
// delay, so nothing is missed or repeated. An answer other than 200 text/event-stream ends it (401, 403 and
// 400 will not change by retrying). A "reset" event means history was lost: reload your state there.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	sse "github.com/tmaxmax/go-sse"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ", ") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "http://localhost:8080/news", "the event stream")
	lastEventID := flag.String("last-event-id", "", "resume after this id on the first connection")
	var extra headers
	flag.Var(&extra, "header", "an extra request header, 'Name: value' (repeatable)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, http.NoBody)
	if err != nil {
		fail(err)
	}
	for _, h := range extra {
		name, value, _ := strings.Cut(h, ":")
		req.Header.Set(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if *lastEventID != "" {
		req.Header.Set("Last-Event-ID", *lastEventID)
	}

	client := &sse.Client{
		// Never a whole-request timeout on a stream (http.Client.Timeout would cut it); the default client has none.
		HTTPClient: http.DefaultClient,
		OnRetry: func(err error, wait time.Duration) {
			fmt.Fprintf(os.Stderr, "%v; reconnecting in %s\n", err, wait.Round(time.Millisecond))
		},
		Backoff: sse.Backoff{MaxInterval: 30 * time.Second},
	}
	conn := client.NewConnection(req)
	out := json.NewEncoder(os.Stdout)
	prevID := *lastEventID
	conn.SubscribeToAll(func(ev sse.Event) {
		// go-sse also hands over a block that only sets retry: (caddy-sse sends one per connection) as an
		// event with no data. Every caddy-sse event has an id of its own, so an unchanged id means no event.
		if ev.LastEventID == prevID && ev.Data == "" && ev.Type == "" {
			return
		}
		prevID = ev.LastEventID
		typ := ev.Type
		if typ == "" {
			typ = "message"
		}
		_ = out.Encode(map[string]string{"id": ev.LastEventID, "type": typ, "data": ev.Data})
	})
	if err := conn.Connect(); err != nil && ctx.Err() == nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "go-sse:", err)
	os.Exit(1)
}
