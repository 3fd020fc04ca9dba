package caddysse

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/chromedp/chromedp"

	"github.com/caddy-sse/caddy-sse/eventid"
)

// The recipes under examples/ are tested here with their real clients. Each example's Caddyfile is loaded into
// the shared test Caddy: its global block gives way to the tests' (ports, the embedded server's store), its site
// address to the test server's, and everything inside the site block is used as written.

// exampleSite returns the body of the site block of examples/<dir>/Caddyfile, with the given old, new
// replacements applied (e.g. the port of an auth service the test started).
func exampleSite(t *testing.T, dir string, oldNew ...string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("examples", dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "\nhttp://localhost:8080 {\n")
	if !ok {
		t.Fatalf("examples/%s/Caddyfile has no site block \"http://localhost:8080 {\"", dir)
	}
	end := strings.LastIndex(body, "\n}")
	if end < 0 {
		t.Fatalf("examples/%s/Caddyfile: the site block does not end", dir)
	}
	body = strings.ReplaceAll(body[:end], "localhost:8080", httpHost)
	var lines []string
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "bind ") {
			continue // the test server has its own listener
		}
		lines = append(lines, line)
	}
	body = strings.Join(lines, "\n")
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(body, oldNew[i]) {
			t.Fatalf("examples/%s/Caddyfile does not contain %q", dir, oldNew[i])
		}
		body = strings.ReplaceAll(body, oldNew[i], oldNew[i+1])
	}
	return body
}

// goBuild builds a Go program of the examples once per test binary run.
var goBuilt sync.Map // package path -> binary

func goBuild(t *testing.T, pkg string) string {
	t.Helper()
	if bin, ok := goBuilt.Load(pkg); ok {
		return bin.(string)
	}
	bin := filepath.Join(storeDir, "bin", strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "-"))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	goBuilt.Store(pkg, bin)
	return bin
}

// nodeModules finds an example's installed npm packages (.ci/run runs npm ci). Without them the test is
// skipped, except in CI, where their absence is a failure.
func nodeModules(t *testing.T, dir string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("examples", dir))
	if err != nil {
		t.Fatal(err)
	}
	requireTool(t, "node", "node")
	if _, err := os.Stat(filepath.Join(abs, "node_modules")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("examples/%s/node_modules missing: .ci/run runs npm ci there", dir)
		}
		t.Skipf("run npm ci in examples/%s to test it", dir)
	}
	return abs
}

// clientEvent is what every example client prints, one JSON object a line.
type clientEvent struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

// exampleProc is a running example program: its stdout lines are events (JSON), its stderr is kept for
// failure messages.
type exampleProc struct {
	t      *testing.T
	cmd    *exec.Cmd
	events chan clientEvent
	stderr lockedBuffer
	done   chan struct{}
}

func (p *exampleProc) logs() string { return p.stderr.String() }

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startExample(t *testing.T, env []string, name string, args ...string) *exampleProc {
	t.Helper()
	p := &exampleProc{t: t, cmd: exec.Command(name, args...), events: make(chan clientEvent, 1000), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = &p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var ev clientEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				p.stderr.Write([]byte("stdout (not JSON): " + sc.Text() + "\n"))
				continue
			}
			p.events <- ev
		}
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		_ = p.cmd.Wait()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", filepath.Base(name), p.logs())
		}
	})
	return p
}

// expect reads the next events and checks their type and data, in order.
func (p *exampleProc) expect(want ...clientEvent) []clientEvent {
	p.t.Helper()
	var got []clientEvent
	for i, w := range want {
		select {
		case ev := <-p.events:
			if ev.Type != w.Type || ev.Data != w.Data {
				p.t.Fatalf("event %d: %+v, want type %q data %q", i, ev, w.Type, w.Data)
			}
			got = append(got, ev)
		case <-p.done:
			p.t.Fatalf("client ended while waiting for %+v:\n%s", w, p.logs())
		case <-time.After(waitLong):
			p.t.Fatalf("no event %+v within %s:\n%s", w, waitLong, p.logs())
		}
	}
	return got
}

// runExample runs an example program to its end and returns its stdout; it fails the test on a non-zero exit
// unless wantFail.
func runExample(t *testing.T, wantFail bool, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if (err != nil) != wantFail {
		t.Fatalf("%s %v: error %v (want failure: %v)\nstdout: %s\nstderr: %s", filepath.Base(name), args, err, wantFail, out.String(), errOut.String())
	}
	return out.String(), errOut.String()
}

// pubAck is what the example publishers print.
type pubAck struct {
	Stream    string `json:"stream"`
	Seq       uint64 `json:"seq"`
	Duplicate bool   `json:"duplicate"`
}

func decodeAck(t *testing.T, out string) pubAck {
	t.Helper()
	var ack pubAck
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &ack); err != nil {
		t.Fatalf("publisher printed %q: %v", out, err)
	}
	return ack
}

// checkPublisher: an example publisher's event reaches a stream client with its type, payload and sequence; the
// same Nats-Msg-Id again is acknowledged as a duplicate and not streamed; a subject no stream stores fails with
// a message that says so, after bounded retries. idPrefix keeps the ids of one publisher's test apart from
// another's: the tests share one stream, whose duplicate window is two minutes.
func checkPublisher(t *testing.T, idPrefix string, publish func(wantFail bool, subject, event, msgID, data string) (string, string)) {
	loadSite(t, exampleSite(t, "publish"))
	s := openLive(t, "/events", "ORDERS", 1)

	first := decodeAck(t, must(publish(false, "orders.42.shipped", "order-shipped", idPrefix+"order-42-shipped", `{"order":42}`)))
	if first.Stream != "ORDERS" || first.Duplicate {
		t.Fatalf("ack %+v, want a new event in ORDERS", first)
	}
	ev := s.next()
	if _, seq, err := eventid.Parse(ev.ID); err != nil || seq != first.Seq || ev.Type != "order-shipped" || ev.Data != `{"order":42}` {
		t.Fatalf("streamed %+v, want seq %d, type order-shipped", ev, first.Seq)
	}

	again := decodeAck(t, must(publish(false, "orders.42.shipped", "order-shipped", idPrefix+"order-42-shipped", `{"order":42}`)))
	if !again.Duplicate || again.Seq != first.Seq {
		t.Fatalf("retry with the same Nats-Msg-Id: ack %+v, want a duplicate of seq %d", again, first.Seq)
	}
	untyped := decodeAck(t, must(publish(false, "orders.43.created", "", idPrefix+"order-43-created", "plain")))
	ev = s.next() // the duplicate was not streamed: the next event is this one
	if _, seq, _ := eventid.Parse(ev.ID); seq != untyped.Seq || ev.Type != "message" || ev.Data != "plain" {
		t.Fatalf("streamed %+v, want the untyped event %d", ev, untyped.Seq)
	}

	_, stderr := publish(true, "nowhere.1", "x", "", "lost")
	if !strings.Contains(stderr, "no JetStream stream stores this subject") {
		t.Fatalf("publishing to a subject no stream stores: stderr %q", stderr)
	}
}

func must(stdout, _ string) string { return stdout }

// TestExamplePublishGo: examples/publish/go with nats.go's jetstream package.
func TestExamplePublishGo(t *testing.T) {
	bin := goBuild(t, "./examples/publish/go")
	checkPublisher(t, "go-", func(wantFail bool, subject, event, msgID, data string) (string, string) {
		args := []string{"-url", "nats://" + embeddedAddr, "-subject", subject, "-attempts", "2"}
		if event != "" {
			args = append(args, "-event", event)
		}
		if msgID != "" {
			args = append(args, "-msg-id", msgID)
		}
		return runExample(t, wantFail, bin, append(args, data)...)
	})
}

// TestExamplePublishNode: examples/node/publish.mjs with nats.js (npm "nats").
func TestExamplePublishNode(t *testing.T) {
	dir := nodeModules(t, "node")
	checkPublisher(t, "node-", func(wantFail bool, subject, event, msgID, data string) (string, string) {
		args := []string{filepath.Join(dir, "publish.mjs"), "--url", "nats://" + embeddedAddr, "--subject", subject, "--attempts", "2"}
		if event != "" {
			args = append(args, "--event", event)
		}
		if msgID != "" {
			args = append(args, "--msg-id", msgID)
		}
		return runExample(t, wantFail, "node", append(args, data)...)
	})
}

// checkClientResumes: a client nobody here wrote receives typed, untyped and multi-line events; when the server
// ends its stream (a config reload) and events are published while it is away, it reconnects by itself with
// Last-Event-ID and gets exactly those, in order, then live events: nothing missed, nothing twice.
func checkClientResumes(t *testing.T, start func(url string) *exampleProc) {
	// The example's retry 2s becomes 1s, long enough to publish while the client is away; streams end 100ms
	// after a reload instead of up to 5s.
	site := exampleSite(t, "clients", "retry 2s", "retry 1s\n\t\tclose_delay 100ms")
	loadSite(t, site+"\n\trespond /config 1")
	js := embeddedJS(t)
	p := start(baseURL + "/news")
	waitClients(t, "NEWS", 1)

	var all []clientEvent
	send := func(eventType, data string) clientEvent {
		publish(t, js, "news.updates", eventType, data)
		typ := eventType
		if typ == "" {
			typ = "message"
		}
		return clientEvent{Type: typ, Data: data}
	}
	all = append(all, p.expect(send("headline", "rates up"), send("", "plain"), send("headline", "two\nlines"))...)

	loadSite(t, site+"\n\trespond /config 2") // the old config's streams end
	waitClients(t, "NEWS", 0)
	away := []clientEvent{send("headline", "while away 1"), send("", "while away 2")}
	waitClients(t, "NEWS", 1)
	all = append(all, p.expect(append(away, send("headline", "live again"))...)...)

	checkIncreasingIDs(t, all)
	select {
	case ev := <-p.events:
		t.Fatalf("an event more: %+v", ev)
	case <-time.After(200 * time.Millisecond):
	}
}

// checkIncreasingIDs: every event has an id of this server and each is past the one before.
func checkIncreasingIDs(t *testing.T, events []clientEvent) {
	t.Helper()
	var prev uint64
	for i, ev := range events {
		_, seq, err := eventid.Parse(ev.ID)
		if err != nil || seq <= prev {
			t.Fatalf("event %d has id %q after %d: want increasing ids", i, ev.ID, prev)
		}
		prev = seq
	}
}

// TestExampleClientEventSourceNode: the npm eventsource package (examples/node/eventsource.mjs).
func TestExampleClientEventSourceNode(t *testing.T) {
	dir := nodeModules(t, "node")
	checkClientResumes(t, func(url string) *exampleProc {
		return startExample(t, nil, "node", filepath.Join(dir, "eventsource.mjs"), url, "--types", "headline,reset")
	})
}

// TestExampleClientFetchEventSource: @microsoft/fetch-event-source (examples/node/fetch-event-source.mjs).
func TestExampleClientFetchEventSource(t *testing.T) {
	dir := nodeModules(t, "node")
	checkClientResumes(t, func(url string) *exampleProc {
		return startExample(t, nil, "node", filepath.Join(dir, "fetch-event-source.mjs"), url)
	})
}

// TestExampleClientGoSSE: github.com/tmaxmax/go-sse (examples/clients/go-sse).
func TestExampleClientGoSSE(t *testing.T) {
	bin := goBuild(t, "./examples/clients/go-sse")
	checkClientResumes(t, func(url string) *exampleProc { return startExample(t, nil, bin, "-url", url) })
}

// TestExampleClientPython: the standard-library Python client (examples/clients/sse_client.py).
func TestExampleClientPython(t *testing.T) {
	python := pythonPath(t)
	checkClientResumes(t, func(url string) *exampleProc {
		return startExample(t, nil, python, filepath.Join("examples", "clients", "sse_client.py"), url)
	})
}

// pythonPath finds python3 (.ci/run installs it).
func pythonPath(t *testing.T) string {
	t.Helper()
	return requireTool(t, "python3", "python3")
}

// waitClients waits until exactly n clients are subscribed to the stream in this process (0 while its feed
// does not exist yet: the first client starts it).
func waitClients(t *testing.T, stream string, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d clients on %s", n, stream), func() bool {
		count := 0
		feedPool.Range(func(_, v any) bool {
			if f := v.(*feed); f.tail.Stream.Name == stream {
				count += f.hub.Stats().Subscriptions
			}
			return true
		})
		return count == n
	})
}

// TestExampleBasicAuth: examples/basic-auth. Each user streams only inbox.<user>; fetch-event-source sends the
// Authorization header; without or with wrong credentials the answer is 401, and fetch-event-source stops on
// it instead of retrying forever.
func TestExampleBasicAuth(t *testing.T) {
	dir := nodeModules(t, "node")
	loadSite(t, exampleSite(t, "basic-auth"))
	js := embeddedJS(t)
	basic := func(user, password string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
	expectStatus(t, "/inbox", nil, http.StatusUnauthorized)
	expectStatus(t, "/inbox", map[string]string{"Authorization": basic("alice", "wrong")}, http.StatusUnauthorized)
	_, stderr := runExample(t, true, "node", filepath.Join(dir, "fetch-event-source.mjs"), baseURL+"/inbox", "--authorization", basic("alice", "wrong"))
	if !strings.Contains(stderr, "HTTP 401") {
		t.Fatalf("fetch-event-source with a wrong password: %q, want it to stop on HTTP 401", stderr)
	}

	alice := startExample(t, nil, "node", filepath.Join(dir, "fetch-event-source.mjs"), baseURL+"/inbox", "--authorization", basic("alice", "secret"))
	bob := openStream(t, baseURL+"/inbox", map[string]string{"Authorization": basic("bob", "hunter2")})
	waitClients(t, "INBOX", 2)
	publish(t, js, "inbox.bob", "note", "for bob")
	publish(t, js, "inbox.alice", "note", "for alice")
	alice.expect(clientEvent{Type: "note", Data: "for alice"})
	bob.expectData("for bob")
	bob.expectQuiet(200 * time.Millisecond)
}

// TestExampleForwardAuth: examples/forward-auth with its auth service. A session cookie (the Python client), a
// token in the query (npm eventsource, as a browser's EventSource could) and a bearer token (npm eventsource
// through its fetch option) each get their user's events only; a client's own X-User header is overridden by the auth service's answer, and without a
// token the answer is 401.
func TestExampleForwardAuth(t *testing.T) {
	dir := nodeModules(t, "node")
	python := pythonPath(t)
	authAddr := startAuthService(t)
	loadSite(t, exampleSite(t, "forward-auth", "127.0.0.1:9001", authAddr))
	js := embeddedJS(t)

	for _, header := range []map[string]string{nil, {"X-User": "bob"}, {"Cookie": "session=forged"}} {
		expectStatus(t, "/events", header, http.StatusUnauthorized)
	}

	alice := startExample(t, nil, python, filepath.Join("examples", "clients", "sse_client.py"), baseURL+"/events", "--header", "Cookie: session=tok-alice")
	bob := startExample(t, nil, "node", filepath.Join(dir, "eventsource.mjs"), baseURL+"/events?token=tok-bob", "--types", "note")
	spoof := openStream(t, baseURL+"/events", map[string]string{"Cookie": "session=tok-alice", "X-User": "bob"})
	bearer := startExample(t, nil, "node", filepath.Join(dir, "eventsource.mjs"), baseURL+"/events", "--types", "note", "--authorization", "Bearer tok-bob")
	waitClients(t, "USERS", 4)
	publish(t, js, "user.bob.inbox", "note", "for bob")
	publish(t, js, "user.alice.inbox", "note", "for alice")
	alice.expect(clientEvent{Type: "note", Data: "for alice"})
	bob.expect(clientEvent{Type: "note", Data: "for bob"})
	spoof.expectData("for alice")
	spoof.expectQuiet(200 * time.Millisecond)
	bearer.expect(clientEvent{Type: "note", Data: "for bob"})
}

// startAuthService runs examples/forward-auth/authsvc on a free port and returns its address.
func startAuthService(t *testing.T) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startExample(t, nil, goBuild(t, "./examples/forward-auth/authsvc"), "-listen", addr)
	eventually(t, "auth service up", func() bool {
		resp, err := http.Get("http://" + addr + "/check")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	return addr
}

// exampleConfig returns the whole of examples/<dir>/Caddyfile for the test Caddy: the tests' global options in
// place of its own, localhost:8080 moved to the test server's address and localhost:8081 to secondHost(), bind
// lines dropped, and the given old, new replacements applied.
func exampleConfig(t *testing.T, dir string, oldNew ...string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("examples", dir, "Caddyfile"))
	if err != nil {
		t.Fatal(err)
	}
	_, sites, ok := strings.Cut(string(src), "\n}\n") // the end of the global block
	if !ok || !strings.HasPrefix(strings.TrimSpace(stripCaddyComments(string(src))), "{") {
		t.Fatalf("examples/%s/Caddyfile does not start with a global block", dir)
	}
	globals, _, _ := strings.Cut(siteConfig(""), "\nhttp://"+httpHost+" {")
	var lines []string
	for _, line := range strings.Split(sites, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "bind ") {
			continue
		}
		line = strings.ReplaceAll(line, "localhost:8080", httpHost)
		lines = append(lines, strings.ReplaceAll(line, "localhost:8081", secondHost()))
	}
	sites = strings.Join(lines, "\n")
	for i := 0; i+1 < len(oldNew); i += 2 {
		if !strings.Contains(sites, oldNew[i]) {
			t.Fatalf("examples/%s/Caddyfile does not contain %q", dir, oldNew[i])
		}
		sites = strings.ReplaceAll(sites, oldNew[i], oldNew[i+1])
	}
	return globals + "\n" + sites
}

func stripCaddyComments(src string) string {
	var out []string
	for _, line := range strings.Split(src, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestExampleCORS: examples/cors in Chromium. A page on secondHost() opens an EventSource with
// withCredentials on the test server: signed out, forward_auth refuses it (and EventSource gives up); signed in,
// the cookie goes along, the CORS headers let the browser read the stream, and the page gets its user's
// events only.
func TestExampleCORS(t *testing.T) {
	ctx := browserTab(t)
	authAddr := startAuthService(t)
	loadConfig(t, exampleConfig(t, "cors", "127.0.0.1:9001", authAddr))
	js := embeddedJS(t)

	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+secondHost()+"/?api="+baseURL+"/events")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any]("open()")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "signed out: refused for good", "source.readyState === EventSource.CLOSED")

	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any]("signIn('tok-alice')")); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "signed in: open", "source.readyState === EventSource.OPEN")
	waitClients(t, "USERS", 1)
	publish(t, js, "user.bob.inbox", "note", "for bob")
	publish(t, js, "user.alice.inbox", "note", "for alice")
	waitJS(t, ctx, "alice's event shown", "window.received.length >= 1")
	time.Sleep(200 * time.Millisecond) // room for a wrong event to show up
	got, err := chromedp.Run(ctx, chromedp.Evaluate[[]pageEvent]("window.received"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Type != "note" || got[0].Data != "for alice" {
		t.Fatalf("page received %+v, want alice's note only", got)
	}
}

// natsCLI finds the NATS CLI (github.com/nats-io/natscli): $SSE_NATS_CLI, which .ci/run builds, or nats on the
// PATH.
func natsCLI(t *testing.T) string {
	t.Helper()
	return requireTool(t, "the NATS CLI (go install github.com/nats-io/natscli/nats@v0.5.1)", os.Getenv("SSE_NATS_CLI"), "nats")
}

// TestExamplePublishCLI: the README's nats pub line, with the event type and a Nats-Msg-Id; the same line again
// is a duplicate the stream drops.
func TestExamplePublishCLI(t *testing.T) {
	cli := natsCLI(t)
	loadSite(t, exampleSite(t, "publish"))
	s := openLive(t, "/events", "ORDERS", 1)
	pub := func(msgID, data string) string {
		out, _ := runExample(t, false, cli, "--server", "nats://"+embeddedAddr, "pub", "--jetstream",
			"-H", "Sse-Event:order-shipped", "-H", "Nats-Msg-Id:"+msgID, "orders.44.shipped", data)
		return out
	}
	pub("cli-order-44-shipped", `{"order":44}`)
	pub("cli-order-44-shipped", `{"order":44}`) // a retry: dropped by the stream
	pub("cli-order-45-shipped", `{"order":45}`)
	for _, want := range []string{`{"order":44}`, `{"order":45}`} {
		if ev := s.next(); ev.Type != "order-shipped" || ev.Data != want {
			t.Fatalf("streamed %+v, want order-shipped %s", ev, want)
		}
	}
	s.expectQuiet(200 * time.Millisecond)
}

// expectStatus sends a GET with the given headers and checks the answer's status.
func expectStatus(t *testing.T, path string, header map[string]string, want int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("GET %s with %v: %d, want %d", path, header, resp.StatusCode, want)
	}
}

// TestExampleBehindProxy: examples/behind-proxy. Through the proxy, the first comment and every event arrive at
// once (nothing buffers them), and a client that reconnects with Last-Event-ID through it gets what it missed.
func TestExampleBehindProxy(t *testing.T) {
	loadConfig(t, exampleConfig(t, "behind-proxy"))
	js := embeddedJS(t)
	front := "http://" + secondHost() + "/events"

	s := openStream(t, front, nil)
	s.waitOpen() // the first comment came through before any event: headers and comment are not held back
	if got := s.resp.Header.Get("X-Accel-Buffering"); got != "no" {
		t.Fatalf("X-Accel-Buffering through the proxy: %q", got)
	}
	waitClients(t, "EDGE", 1)
	start := time.Now()
	publish(t, js, "edge.updates", "greeting", "one")
	first := s.expectData("one")[0]
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the event took %s through the proxy: something buffers", took)
	}
	s.close()
	waitClients(t, "EDGE", 0)
	publish(t, js, "edge.updates", "", "two") // while the client is away
	again := openStream(t, front, map[string]string{"Last-Event-ID": first.ID})
	again.expectData("two")
	waitClients(t, "EDGE", 1)
	publish(t, js, "edge.updates", "", "three")
	again.expectData("three")
}

// loadConfig loads a whole Caddyfile (from exampleConfig) into the shared test Caddy.
func loadConfig(t *testing.T, caddyfile string) {
	t.Helper()
	caddytest.NewTester(t).InitServer(caddyfile, "caddyfile")
	if t.Failed() {
		t.FailNow()
	}
	http.DefaultClient.CloseIdleConnections() // idle connections belong to the previous config's server
}

// TestExampleFiles: every example Caddyfile adapts without warnings, and every link to examples/ in the READMEs
// names a file that exists.
func TestExampleFiles(t *testing.T) {
	caddyfiles, _ := filepath.Glob("examples/*/Caddyfile")
	if len(caddyfiles) == 0 {
		t.Fatal("no example Caddyfiles")
	}
	for _, path := range caddyfiles {
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": path}); err != nil || len(warnings) > 0 {
			t.Errorf("%s: %v %v", path, err, warnings)
		}
	}
	link := regexp.MustCompile(`\]\(((?:\.\./)?examples/[^)#]*|[a-z-]+/[^)#]*|[A-Za-z.-]+)(?:#[^)]*)?\)`)
	for _, readme := range []string{"README.md", "examples/README.md", "examples/deploy/README.md"} {
		text, err := os.ReadFile(readme)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			if strings.Contains(m[1], "://") || !strings.Contains(readme+m[1], "examples") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(readme), m[1])); err != nil {
				t.Errorf("%s links to %s, which does not exist", readme, m[1])
			}
		}
	}
}

// secondHost is host:port of a second site for the examples with two (a page's origin, a proxy in front),
// chosen once per test process like the test server's own port.
var secondHost = sync.OnceValue(func() string { return fmt.Sprintf("localhost:%d", pickPort()) })
