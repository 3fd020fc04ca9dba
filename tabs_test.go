package caddysse

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Two live tabs of one browser with the same client key and max_per_key 1 settle: the newer one keeps the
// connection, the older one is told it was replaced and stays away (its retry is a day), instead of the two
// replacing each other in a loop.
func TestTwoTabsWithOneKeySettle(t *testing.T) {
	browser := chromiumPath(t)
	page, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	loadSite(t, `sse /tabs tabs.> {
		stream TABS
		client_key {query.pc}
		max_per_key 1
		retry 200ms
	}
	root * `+page+`
	file_server`)
	js := embeddedJS(t)

	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(browser), chromedp.NoSandbox, chromedp.Flag("disable-gpu", true),
		chromedp.UserDataDir(t.TempDir()))...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(allocCtx)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, time.Minute)
	defer cancelTimeout()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(baseURL+"/two-tabs.html")); err != nil {
		t.Fatal(err)
	}
	type tab struct {
		Name     string `json:"name"`
		Opens    int    `json:"opens"`
		Replaced int    `json:"replaced"`
		Events   int    `json:"events"`
		State    int    `json:"state"`
	}
	read := func() []tab {
		t.Helper()
		tabs, err := chromedp.Run(ctx, chromedp.Evaluate[[]tab](`window.tabs`))
		if err != nil {
			t.Fatal(err)
		}
		return tabs
	}
	eventually(t, "the first tab to be replaced by the second", func() bool {
		tabs := read()
		return len(tabs) == 2 && tabs[0].Replaced == 1 && tabs[1].Opens == 1
	})
	// Many retry intervals later nothing has moved: no ping-pong.
	time.Sleep(2 * time.Second)
	publish(t, js, "tabs.x", "", "still here")
	eventually(t, "the second tab to get a live event", func() bool { return read()[1].Events == 1 })
	tabs := read()
	if first, second := tabs[0], tabs[1]; first.Opens != 1 || first.Replaced != 1 || first.Events != 0 ||
		second.Opens != 1 || second.Replaced != 0 || second.State != 1 {
		t.Fatalf("tabs %+v: want the first replaced once and quiet, the second open once and live", tabs)
	}
	if n := feedSubscriptions(t, "TABS"); n != 1 {
		t.Fatalf("%d connections for one key, want 1", n)
	}
}
