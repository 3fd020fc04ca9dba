package caddysse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the browser tests are skipped, except in CI (CI=true),
// where .ci/run installs it and its absence is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	return requireTool(t, "chromium (apt-get install chromium)", os.Getenv("SSE_CHROMIUM"), "chromium", "chromium-browser")
}

// requireTool returns the first of names found on the PATH (empty names are passed over). Without any, the
// test is skipped, except in CI (CI=true), where .ci/run provides every tool and a missing one is a failure.
func requireTool(t *testing.T, what string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is required in CI", what)
	}
	t.Skipf("%s not installed; this test runs in CI", what)
	return ""
}

// browserTab starts a headless chromium (skipping the test without one) and returns a tab's context, ended with
// the test.
func browserTab(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// waitJS polls a JavaScript expression in the tab until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			state, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({state: demo.state, opens: demo.opens, check: demo.check, received: demo.received.slice(-5)})`))
			t.Fatalf("%s: not within %s; page: %s", what, waitLong, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageEvent is one entry of the demo page's window.demo.received.
type pageEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data string `json:"data"`
}

// pageCheck is the demo page's own gap and duplicate check (window.demo.check).
type pageCheck struct {
	Enabled bool   `json:"enabled"`
	Epoch   string `json:"epoch"`
	Seq     uint64 `json:"seq"`
	Events  int    `json:"events"`
	Gaps    int    `json:"gaps"`
	Dups    int    `json:"dups"`
	Resets  int    `json:"resets"`
}

func pageReceived(t *testing.T, ctx context.Context) []pageEvent {
	t.Helper()
	received, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageEvent](`demo.received`))
	if err != nil {
		t.Fatal(err)
	}
	return received
}

func pageChecked(t *testing.T, ctx context.Context) pageCheck {
	t.Helper()
	check, err := chromedp.Run(ctx, chromedp.Evaluate[pageCheck](`demo.check`))
	if err != nil {
		t.Fatal(err)
	}
	return check
}

// TestBrowserReconnectsAfterReload: the demo page receives events, the server ends the stream on a config
// reload, the page reconnects by itself with Last-Event-ID, and it holds every event once, in order, whatever
// its type; its own check counts no gap and no duplicate.
func TestBrowserReconnectsAfterReload(t *testing.T) {
	ctx := browserTab(t)
	demo, err := filepath.Abs("demo")
	if err != nil {
		t.Fatal(err)
	}
	site := `sse /b1 b1.> {
		stream B1
		retry 200ms
		close_delay 200ms
	}
	respond /version "%d"
	root * ` + demo + `
	file_server`
	loadSite(t, fmt.Sprintf(site, 1))
	js := embeddedJS(t)

	if _, err := chromedp.Run(ctx, chromedp.Navigate(baseURL+"/?stream=/b1")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "page opened its stream", "demo.opens === 1")
	waitSubscribed(t, "B1", 1)

	var want []pageEvent
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			ev := pageEvent{Data: fmt.Sprintf("e%d", i), Type: "message"}
			if i%2 == 0 {
				ev.Type = "typed" // EventSource's onmessage would never see these
			}
			header := ev.Type
			if header == "message" {
				header = ""
			}
			publish(t, js, "b1.x", header, ev.Data)
			want = append(want, ev)
		}
	}
	send(1, 5)
	waitJS(t, ctx, "first events shown", "demo.received.length === 5")

	loadSite(t, fmt.Sprintf(site, 2)) // the old handler ends its streams within close_delay
	send(6, 10)                       // some while the browser is away
	waitJS(t, ctx, "browser reconnected", "demo.opens >= 2")
	send(11, 12)
	waitJS(t, ctx, "every event shown", fmt.Sprintf("demo.received.length >= %d", len(want)))

	received := pageReceived(t, ctx)
	if len(received) != len(want) {
		t.Fatalf("page shows %d events, want %d: %+v", len(received), len(want), received)
	}
	var prev uint64
	for i, ev := range received {
		_, seq, err := eventid.Parse(ev.ID)
		if ev.Type != want[i].Type || ev.Data != want[i].Data || err != nil || seq <= prev {
			t.Fatalf("event %d: %+v, want %+v with an increasing id", i, ev, want[i])
		}
		prev = seq
	}
	if check := pageChecked(t, ctx); check.Gaps != 0 || check.Dups != 0 || check.Resets != 0 || check.Events != len(want) {
		t.Fatalf("the page's own check: %+v, want %d events, no gap, duplicate or reset", check, len(want))
	}
}

// TestBrowserShowsReset: the demo page started with an id this server never wrote gets a reset event, shows
// it, counts it, and checks the events after it from the reset's position: no gap, no duplicate. Heartbeat
// events, which carry no id, are shown and not counted as duplicates of the event before them.
func TestBrowserShowsReset(t *testing.T) {
	ctx := browserTab(t)
	demo, err := filepath.Abs("demo")
	if err != nil {
		t.Fatal(err)
	}
	loadSite(t, `sse /b2 b2.> {
		stream B2
		heartbeat 200ms
		heartbeat_event heartbeat
	}
	root * `+demo+`
	file_server`)
	js := embeddedJS(t)
	publish(t, js, "b2.x", "", "before") // history the page will not get: its cursor is unknown here

	if _, err := chromedp.Run(ctx, chromedp.Navigate(baseURL+"/?stream=/b2&lastEventId=made-up-id")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "reset shown", `demo.check.resets === 1 && document.querySelector("tr.reset") !== null`)
	waitSubscribed(t, "B2", 1)
	publish(t, js, "b2.x", "typed", "after 1")
	publish(t, js, "b2.x", "", "after 2")
	waitJS(t, ctx, "events after the reset", `demo.received.filter(e => e.type !== "heartbeat").length === 3`)
	waitJS(t, ctx, "a heartbeat after them", `demo.received.at(-1).type === "heartbeat"`)
	var got []pageEvent
	for _, ev := range pageReceived(t, ctx) {
		if ev.Type != "heartbeat" {
			got = append(got, ev)
		}
	}
	if got[0].Type != "reset" || !strings.Contains(got[0].Data, "malformed-id") || got[1].Data != "after 1" || got[2].Data != "after 2" {
		t.Fatalf("page received %+v, want a malformed-id reset, then the two events", got)
	}
	if c := pageChecked(t, ctx); c.Gaps != 0 || c.Dups != 0 || c.Resets != 1 || c.Events != 2 {
		t.Fatalf("the page's check: %+v, want 2 events after 1 reset, no gap or duplicate", c)
	}
}
