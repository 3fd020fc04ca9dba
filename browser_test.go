package caddysse

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's chromium. Without it the browser test is skipped, except in CI (CI=true), where
// .ci/run installs it and its absence is a failure.
func chromiumPath(t *testing.T) string {
	for _, name := range []string{os.Getenv("SSE_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (apt-get install chromium)")
	}
	t.Skip("chromium not installed; the browser test runs in CI")
	return ""
}

// TestBrowserReconnectsAfterReload: the demo page's own EventSource receives events, the server ends the stream
// on a config reload, the browser reconnects by itself with Last-Event-ID, and the page holds every event once,
// in order.
func TestBrowserReconnectsAfterReload(t *testing.T) {
	browser := chromiumPath(t)
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

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser),
		chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	defer cancelTimeout()

	if _, err := chromedp.Run(ctx, chromedp.Navigate(baseURL+"/?stream=/b1")); err != nil {
		t.Fatal(err)
	}
	waitJS := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(waitLong)
		for ok := false; !ok; {
			var err error
			if ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool](expr)); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			if !ok && time.Now().After(deadline) {
				t.Fatalf("%s: not within %s", what, waitLong)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitJS("page opened its stream", "window.opens === 1")
	waitSubscribed(t, "B1", 1)

	var want []string
	send := func(from, to int) {
		for i := from; i <= to; i++ {
			data := fmt.Sprintf("e%d", i)
			publish(t, js, "b1.x", "", data)
			want = append(want, data)
		}
	}
	send(1, 5)
	waitJS("first events shown", "window.received.length === 5")

	loadSite(t, fmt.Sprintf(site, 2)) // the old handler ends its streams within close_delay
	send(6, 10)                       // some while the browser is away
	waitJS("browser reconnected", "window.opens >= 2")
	send(11, 12)
	waitJS("every event shown", fmt.Sprintf("window.received.length >= %d", len(want)))

	type shown struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Data string `json:"data"`
	}
	received, err := chromedp.Run(ctx, chromedp.Evaluate[[]shown](`window.received`))
	if err != nil {
		t.Fatal(err)
	}
	if len(received) != len(want) {
		t.Fatalf("page shows %d events, want %d: %+v", len(received), len(want), received)
	}
	var prev uint64
	for i, ev := range received {
		_, seq, err := eventid.Parse(ev.ID)
		if ev.Type != "message" || ev.Data != want[i] || err != nil || seq <= prev {
			t.Fatalf("event %d: %+v, want data %s with an increasing id", i, ev, want[i])
		}
		prev = seq
	}
}
