package caddysse

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/caddy-sse/caddy-sse/session"
)

func TestReloadMidStreamLosesNothing(t *testing.T) {
	site := `sse /reload reload.> {
		stream RELOAD
		close_delay 300ms
		retry 100ms
	}
	respond /version "%d"`
	loadSite(t, fmt.Sprintf(site, 1))
	js := embeddedJS(t)
	s := openLive(t, "/reload", "RELOAD", 1)
	publish(t, js, "reload.a", "", "1")
	last := s.expectData("1")[0]

	loadSite(t, fmt.Sprintf(site, 2)) // an unchanged sse route: the feed is shared, the old streams end
	s.expectEnd()
	publish(t, js, "reload.a", "", "2") // while the client is away
	publish(t, js, "reload.a", "", "3")
	r := openStream(t, baseURL+"/reload", map[string]string{"Last-Event-ID": last.ID})
	r.expectData("2", "3")
	publish(t, js, "reload.a", "", "4")
	r.expectData("4")
}

// startNATS runs a standalone JetStream server on a fixed port and store, so it can be restarted in place.
func startNATS(t *testing.T, port int, dir string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true, NoLog: true,
		JetStreamMaxMemory: 64 << 20, JetStreamMaxStore: 256 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	return srv
}

func TestNATSRestartMidStreamLosesNothing(t *testing.T) {
	port, dir := freePort(t), t.TempDir()
	srv := startNATS(t, port, dir)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	loadSite(t, fmt.Sprintf(`sse /natsrestart natsrestart.> {
		stream NATSRESTART
		nats_url %s
	}`, url))
	js := natsJS(t, url)
	s := openLive(t, "/natsrestart", "NATSRESTART", 1)
	publish(t, js, "natsrestart.a", "", "1")
	s.expectData("1")

	srv.Shutdown()
	srv.WaitForShutdown()
	srv = startNATS(t, port, dir)
	defer srv.Shutdown()
	for i := 2; i <= 6; i++ {
		publish(t, js, "natsrestart.a", "", strconv.Itoa(i))
	}
	s.expectData("2", "3", "4", "5", "6") // the same connection: the node's tail resumed where it was
}

func TestNATSDownAtStart(t *testing.T) {
	port := freePort(t)
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	loadSite(t, fmt.Sprintf(`sse /natsdown natsdown.> {
		stream NATSDOWN
		nats_url %s
		heartbeat 200ms
	}`, url)) // Caddy starts although nothing listens there
	s := openStream(t, baseURL+"/natsdown", nil)
	s.waitOpen()

	srv := startNATS(t, port, t.TempDir())
	defer srv.Shutdown()
	js := natsJS(t, url)
	// The client joined before the stream's position was known, so it starts wherever the feed starts: keep
	// publishing until the first event reaches it, then everything after must arrive in order.
	deadline := time.Now().Add(waitLong)
	for got := false; !got; {
		if time.Now().After(deadline) {
			t.Fatal("no event reached a client that connected while NATS was down")
		}
		publish(t, js, "natsdown.a", "", "probe")
		select {
		case ev := <-s.events:
			got = ev.Data == "probe"
		case <-time.After(200 * time.Millisecond):
		}
	}
	publish(t, js, "natsdown.a", "", "final")
	for ev := s.next(); ev.Data != "final"; ev = s.next() {
		if ev.Data != "probe" {
			t.Fatalf("unexpected event %+v", ev)
		}
	}
}

func TestStreamRecreatedGetsReset(t *testing.T) {
	loadSite(t, `sse /recreated recreated.> {
		stream RECREATED
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/recreated", "RECREATED", 1)
	publish(t, js, "recreated.a", "", "1")
	old := s.expectData("1")[0]

	// Deleting the stream ends the node's streams (the feed recreates it under a new epoch); a client coming
	// back with an id of the old incarnation is told so.
	if err := js.DeleteStream(t.Context(), "RECREATED"); err != nil {
		t.Fatal(err)
	}
	s.expectEnd()
	seq := publish(t, js, "recreated.a", "", "new-1") // retried until the feed has recreated the stream
	waitDispatched(t, "RECREATED", seq)
	r := openStream(t, baseURL+"/recreated", map[string]string{"Last-Event-ID": old.ID})
	ev := r.next()
	if ev.Type != "reset" || ev.Data != `{"reason":"`+string(session.ReasonStreamChanged)+`"}` {
		t.Fatalf("got %+v, want a reset for the recreated stream", ev)
	}
	publish(t, js, "recreated.a", "", "new-2")
	r.expectData("new-2")
}

func TestExternalNATSWithToken(t *testing.T) {
	port := freePort(t)
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
		Authorization: "s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Setenv("SSE_TEST_NATS_TOKEN", "s3cret")
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	loadSite(t, fmt.Sprintf(`sse /external external.> {
		stream EXTERNAL
		nats_url %s
		nats_token {env.SSE_TEST_NATS_TOKEN}
	}`, url))
	s := openLive(t, "/external", "EXTERNAL", 1)
	js := natsJS(t, "nats://s3cret@127.0.0.1:"+strconv.Itoa(port))
	publish(t, js, "external.a", "", "authenticated")
	s.expectData("authenticated")
}

// A credentials file that cannot be read fails the config load with a clear error; the running config stays.
func TestUnreadableCredentialsFailLoad(t *testing.T) {
	loadSite(t, `sse /badcreds badcreds.> {
		stream BADCREDS
	}`)
	missing := filepath.Join(t.TempDir(), "missing.creds")
	caddytest.AssertLoadError(t, siteConfig(fmt.Sprintf(`sse /badcreds badcreds.> {
		stream BADCREDS
		nats_url nats://127.0.0.1:1
		nats_creds %s
	}`, missing)), "caddyfile", "missing.creds")
	openLive(t, "/badcreds", "BADCREDS", 1) // the previous config still serves
}
