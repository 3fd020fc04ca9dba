package caddysse

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The quick start, run as a newcomer runs it: the commands are read from README.md, not copied here, so the
// test follows the README when it changes. It needs the README's ports (8080, 4222, Caddy's admin 2019), so it
// runs only when asked: .ci/smoke-example sets SSE_QUICKSTART=1.

// quickStart is what the README's "Quick start" section tells a newcomer to run.
type quickStart struct {
	run     string // go run ./cmd/caddy run --config Caddyfile.example
	publish string // curl -d 'hello' '...publish...'
	stream  string // curl -N '...events...'
	page    string // the page to open
}

func readQuickStart(t *testing.T) quickStart {
	t.Helper()
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Quick start")
	if !ok {
		t.Fatal("README.md has no Quick start section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var qs quickStart
	for _, line := range strings.Split(section, "\n") {
		cmd := strings.TrimSpace(stripComment(line))
		switch {
		case strings.HasPrefix(cmd, "go run ./cmd/caddy run"):
			qs.run = cmd
		case strings.HasPrefix(cmd, "curl -d ") && qs.publish == "":
			qs.publish = cmd
		case strings.HasPrefix(cmd, "curl -N ") && qs.stream == "":
			qs.stream = cmd
		}
	}
	if m := regexp.MustCompile(`open <(http://[^>]+)>`).FindStringSubmatch(section); m != nil {
		qs.page = m[1]
	}
	if qs.run == "" || qs.publish == "" || qs.stream == "" || qs.page == "" {
		t.Fatalf("README's quick start lacks a command: %+v", qs)
	}
	return qs
}

// stripComment drops a shell comment that is outside quotes.
func stripComment(line string) string {
	quote := rune(0)
	for i, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == '#' && (i == 0 || line[i-1] == ' '):
			return line[:i]
		}
	}
	return line
}

// shellCommand is a command the README shows, run by bash in its own process group so the test ends it and
// whatever it started (go run starts the built binary as a child).
type shellCommand struct {
	cmd *exec.Cmd
	out lockedBuffer
}

func (s *shellCommand) output() string { return s.out.String() }

func startShell(t *testing.T, env []string, line string) *shellCommand {
	t.Helper()
	s := &shellCommand{cmd: exec.Command("bash", "-c", line)}
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop interrupts the command as Ctrl-C would, then waits for it.
func (s *shellCommand) stop(t *testing.T) {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Errorf("%q did not end on SIGINT; killing it", s.cmd.Args[2])
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func runShell(t *testing.T, line string) string {
	t.Helper()
	out, err := exec.Command("bash", "-c", line).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", line, err, out)
	}
	return string(out)
}

func requireFreePort(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the quick start needs %s, which is in use: %v", addr, err)
	}
	l.Close()
}

// TestQuickStart runs the README's quick start: its run command, the demo page it names open in Chromium, its
// curl lines. Every published payload appears on the page with its type, curl -N streams it too, and after the
// page's "drop connection" and "pause reading" buttons, with events published meanwhile (by the README's curl
// line, then by the page's own auto-publish), the page's own check counts no gap and no duplicate. The page
// answers on 127.0.0.1 as well as on localhost.
func TestQuickStart(t *testing.T) {
	if os.Getenv("SSE_QUICKSTART") == "" {
		t.Skip("runs the README's quick start on its real ports; .ci/smoke-example runs it (SSE_QUICKSTART=1)")
	}
	qs := readQuickStart(t)
	for _, addr := range []string{"127.0.0.1:8080", "127.0.0.1:4222", "127.0.0.1:2019"} {
		requireFreePort(t, addr)
	}
	ctx := browserTab(t) // before starting Caddy: skips without chromium outside CI

	// A fresh machine: no stored events, no Caddy config from an earlier run.
	home := t.TempDir()
	caddy := startShell(t, []string{"XDG_DATA_HOME=" + home + "/data", "XDG_CONFIG_HOME=" + home + "/config"}, qs.run)
	deadline := time.Now().Add(5 * time.Minute) // go run compiles first
	for {
		if body, err := httpGet(qs.page); err == nil && strings.Contains(body, "caddy-sse demo") {
			break
		}
		if caddy.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("%s did not serve %s:\n%s", qs.run, qs.page, caddy.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, page := range []string{"http://127.0.0.1:8080/", "http://localhost:8080/"} {
		if body, err := httpGet(page); err != nil || !strings.Contains(body, "caddy-sse demo") {
			t.Fatalf("%s: %v, body %.80q", page, err, body)
		}
	}

	// ... and on loopback only: its publish route has no authentication.
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			ipNet, ok := a.(*net.IPNet)
			if !ok || ipNet.IP.IsLoopback() || ipNet.IP.IsLinkLocalUnicast() {
				continue
			}
			addr := net.JoinHostPort(ipNet.IP.String(), "8080")
			if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conn.Close()
				t.Fatalf("the example answers on %s: it must listen on loopback only", addr)
			}
		}
	}

	if _, err := chromedp.Run(ctx, chromedp.Navigate(qs.page)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "page opened its stream", "demo.opens === 1")
	curlN := startShell(t, nil, qs.stream)

	type published struct{ id, data, eventType string }
	var sent []published
	publishLine := func(data string) {
		t.Helper()
		line := qs.publish
		if data != "hello" {
			line = strings.Replace(line, "'hello'", "'"+data+"'", 1)
		}
		answer := runShell(t, line)
		m := regexp.MustCompile(`"id":"([^"]+)"`).FindStringSubmatch(answer)
		if m == nil {
			t.Fatalf("%s answered %q", line, answer)
		}
		ev := "message"
		if m := regexp.MustCompile(`[?&]event=([^&']+)`).FindStringSubmatch(line); m != nil {
			ev = m[1]
		}
		sent = append(sent, published{m[1], data, ev})
	}
	pageShowsAll := func(what string) {
		t.Helper()
		waitJS(t, ctx, what, fmt.Sprintf("demo.received.length >= %d", len(sent)))
		got := pageReceived(t, ctx)
		if len(got) != len(sent) {
			t.Fatalf("%s: page shows %d events, want %d: %+v", what, len(got), len(sent), got)
		}
		for i, ev := range got {
			if ev.ID != sent[i].id || ev.Data != sent[i].data || ev.Type != sent[i].eventType {
				t.Fatalf("%s: event %d on the page is %+v, want %+v", what, i, ev, sent[i])
			}
		}
		if c := pageChecked(t, ctx); !c.Enabled || c.Gaps != 0 || c.Dups != 0 || c.Resets != 0 || c.Events != len(sent) {
			t.Fatalf("%s: the page's check says %+v, want %d events and no gap, duplicate or reset", what, c, len(sent))
		}
	}

	publishLine("hello") // the README's line, as written
	pageShowsAll("the README's event on the page")
	eventually(t, "curl -N shows the event", func() bool {
		out := curlN.output()
		return strings.Contains(out, "id: "+sent[0].id) && strings.Contains(out, "event: "+sent[0].eventType) &&
			strings.Contains(out, "data: hello")
	})

	// Drop the connection, publish while the page is away (retry is 2s), and watch it resume.
	if _, err := chromedp.Run(ctx, chromedp.Click("#drop")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "page noticed the drop", `demo.state === "connecting"`)
	for i := 1; i <= 3; i++ {
		publishLine(fmt.Sprintf("while dropped %d", i))
	}
	waitJS(t, ctx, "page reconnected", "demo.opens === 2")
	if resumed, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("demo.resumedFrom")); resumed != sent[0].id {
		t.Fatalf("page resumed from %q, want %q", resumed, sent[0].id)
	}
	for i := 1; i <= 2; i++ {
		publishLine(fmt.Sprintf("after the drop %d", i))
	}
	pageShowsAll("every event after the drop")

	// Pause reading: events wait in the socket and arrive, in order, when the page reads again.
	if err := chromedp.Do(ctx, chromedp.SetValue("#pause-seconds", "2"), chromedp.Click("#pause")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "page paused", `demo.state === "paused"`)
	for i := 1; i <= 3; i++ {
		publishLine(fmt.Sprintf("while paused %d", i))
	}
	pageShowsAll("every event after the pause")
	waitJS(t, ctx, "page reading again", `demo.state === "open"`)

	// What a newcomer does next: the page's own auto-publish, and the drop button while it runs.
	if _, err := chromedp.Run(ctx, chromedp.Click("#auto")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "ticks arrive", `demo.received.filter(e => e.type === "tick").length >= 3`)
	if _, err := chromedp.Run(ctx, chromedp.Click("#drop")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "page reconnected while ticks kept coming", "demo.opens === 3")
	waitJS(t, ctx, "more ticks after the reconnect", `demo.received.filter(e => e.type === "tick").length >= 10`)
	if _, err := chromedp.Run(ctx, chromedp.Click("#auto")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the last tick's publish lands
	ticks, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`demo.received.filter(e => e.type === "tick").map(e => e.data)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, data := range ticks {
		if want := fmt.Sprintf("tick %d", i+1); data != want {
			t.Fatalf("tick %d on the page is %q, want %q (all: %q)", i, data, want, ticks)
		}
	}
	if c := pageChecked(t, ctx); c.Gaps != 0 || c.Dups != 0 || c.Resets != 0 || c.Events != len(sent)+len(ticks) {
		t.Fatalf("after auto-publish and a drop, the page's check says %+v, want %d events, no gap, duplicate or reset", c, len(sent)+len(ticks))
	}

	if dir := os.Getenv("SSE_SCREENSHOT_DIR"); dir != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "quickstart.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	curlN.stop(t)
	caddy.stop(t)
	if out := curlN.output(); strings.Count(out, "\ndata: ") < 1 {
		t.Fatalf("curl -N printed:\n%s", out)
	}
}

func httpGet(url string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), err
}
