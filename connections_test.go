package caddysse

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// What each bad client key gets: 400 when the request itself carries the bad value, 403 when an identity
// placeholder is missing; nothing reaches the stream either way.
func TestClientKeyBadInput(t *testing.T) {
	loadSite(t, `sse /keyq keyq.> {
		stream KEYQ
		client_key {query.user}#{query.pc}
		max_per_key 1
	}
	sse /keyauth keyq.> {
		stream KEYQ
		client_key {http.auth.user.id}
	}`)
	tests := []struct {
		name string
		url  string
		want int
	}{
		{"missing query value", "/keyq?user=ann", 400},
		{"empty query value", "/keyq?user=ann&pc=", 400},
		{"blank query value", "/keyq?user=ann&pc=%20", 400},
		{"key over 256 bytes", "/keyq?user=ann&pc=" + strings.Repeat("x", 300), 400},
		{"control character", "/keyq?user=ann&pc=a%01b", 400},
		{"no authenticated user", "/keyauth", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Get(baseURL + tt.url)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
	s := openStream(t, baseURL+"/keyq?user=ann&pc=1", nil)
	s.waitOpen()
}

// rawLines collects the raw lines a stream has sent so far.
func (s *sseStream) rawLines() []string {
	var out []string
	for {
		select {
		case l := <-s.raw:
			out = append(out, l)
		default:
			return out
		}
	}
}

func TestMaxPerKeyReplace(t *testing.T) {
	loadSite(t, `sse /rep rep.> {
		stream REP
		client_key {query.pc}
		max_per_key 1
	}`)
	js := embeddedJS(t)
	old := openLive(t, "/rep?pc=store1", "REP", 1)
	other := openLive(t, "/rep?pc=store2", "REP", 2) // another key is not touched
	newer := openStream(t, baseURL+"/rep?pc=store1", nil)
	newer.waitOpen()

	ev := old.next()
	if ev.Type != "replaced" || ev.ID != "" || ev.Data != `{"reason":"replaced"}` {
		t.Fatalf("the older stream got %+v, want the replaced event without id", ev)
	}
	old.expectEnd()
	if lines := strings.Join(old.rawLines(), "\n"); !strings.Contains(lines, "retry: 86400000") {
		t.Fatalf("the replaced stream did not ask for a long retry: %q", lines)
	}
	waitSubscribed(t, "REP", 2)
	publish(t, js, "rep.x", "", "after")
	newer.expectData("after")
	other.expectData("after")
}

func TestMaxPerKeyReject(t *testing.T) {
	loadSite(t, `sse /rej rej.> {
		stream REJ
		client_key {query.pc}
		max_per_key 1 reject
	}`)
	first := openLive(t, "/rej?pc=a", "REJ", 1)
	resp, err := http.Get(baseURL + "/rej?pc=a")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "retry: ") {
		t.Fatalf("second connection: %d %q (Retry-After %q), want 200 with retry: and Retry-After",
			resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	first.close()
	eventually(t, "the key to be free", func() bool { return keys.count(routeKeySpace(t, "REJ"), "a") == 0 })
	again := openStream(t, baseURL+"/rej?pc=a", nil)
	again.waitOpen()
	waitSubscribed(t, "REJ", 1)
}

// routeKeySpace is the key space of the route on stream.
func routeKeySpace(t *testing.T, stream string) string {
	t.Helper()
	for _, h := range routes.list() {
		if h.Stream == stream {
			return h.conns.keySpace
		}
	}
	t.Fatalf("no route on stream %s", stream)
	return ""
}

func TestHeartbeatAndConnectEvents(t *testing.T) {
	loadSite(t, `sse /hb hb.> {
		stream HB
		heartbeat 300ms
		heartbeat_event ping
		connect_event connected
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/hb", "HB", 1)
	if ev := s.next(); ev.Type != "connected" || ev.ID != "" {
		t.Fatalf("first event %+v, want connected without id", ev)
	}
	seq := publish(t, js, "hb.x", "", "1")
	event := s.next()
	for event.Type == "ping" && event.ID == "" { // the publish may take longer than a heartbeat on a busy machine
		event = s.next()
	}
	if event.Data != "1" || !strings.HasSuffix(event.ID, "-"+strconv.FormatUint(seq, 10)) {
		t.Fatalf("got %+v, want the event", event)
	}
	// The parser keeps the last event id as a browser does: a ping without an id line leaves it as it was.
	ev := s.next()
	if ev.Type != "ping" || ev.ID != event.ID {
		t.Fatalf("got %+v after 300ms idle, want a ping that leaves Last-Event-ID at %s", ev, event.ID)
	}
}

// A stream with max_lifetime ends again and again; a client resuming with its Last-Event-ID each time misses
// nothing and sees nothing twice.
func TestMaxLifetimeResumesLosslessly(t *testing.T) {
	loadSite(t, `sse /life life.> {
		stream LIFE
		max_lifetime 400ms
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/life", "LIFE", 1) // subscribed before the first event is published
	stop := make(chan struct{})
	published := make(chan int, 1)
	go func() {
		n := 0
		defer func() { published <- n }()
		for {
			select {
			case <-stop:
				return
			default:
			}
			n++
			publish(t, js, "life.x", "", strconv.Itoa(n))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	var got []int
	last := ""
	ends := 0
	total := -1 // known once the publisher stopped
	for start := time.Now(); total < 0 || len(got) < total; ends++ {
		if total < 0 && time.Since(start) > 2*time.Second {
			close(stop)
			total = <-published
		}
		if ends > 0 {
			s = openStream(t, baseURL+"/life", map[string]string{"Last-Event-ID": last})
		}
		for ev := range s.drain() {
			if ev.Type != "message" {
				t.Fatalf("unexpected %+v", ev)
			}
			n, _ := strconv.Atoi(ev.Data)
			got = append(got, n)
			last = ev.ID
		}
		if ends > 100 {
			t.Fatalf("still short after %d reconnects: %d of %d events: %v", ends, len(got), total, got)
		}
	}
	if ends < 4 {
		t.Fatalf("only %d lifetime ends with max_lifetime 400ms", ends)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("event %d is %d: lost, duplicated or reordered across %d lifetime ends", i, n, ends)
		}
	}
}

// drain yields the stream's events until the server ends it.
func (s *sseStream) drain() <-chan sseEvent {
	out := make(chan sseEvent)
	go func() {
		defer close(out)
		for {
			select {
			case ev := <-s.events:
				out <- ev
			case <-s.done:
				for {
					select {
					case ev := <-s.events:
						out <- ev
					default:
						return
					}
				}
			case <-time.After(waitLong):
				return
			}
		}
	}()
	return out
}

func TestMaxConnectRate(t *testing.T) {
	loadSite(t, `sse /rate rate.> {
		stream RATE
		max_connect_rate 1/m
	}`)
	first := openStream(t, baseURL+"/rate", nil)
	first.waitOpen()
	resp, err := http.Get(baseURL + "/rate")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("second connect in the same minute: %d, Retry-After %q; want turned away", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestAdminViewAndClose(t *testing.T) {
	loadSite(t, `sse /adm adm.> {
		stream ADM
		client_key {query.pc}
	}`)
	a := openLive(t, "/adm?pc=one", "ADM", 1)
	b := openLive(t, "/adm?pc=one", "ADM", 2)
	c := openLive(t, "/adm?pc=two", "ADM", 3)

	resp, err := http.Get(fmt.Sprintf("http://localhost:%d/sse/", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	var view adminView
	err = json.NewDecoder(resp.Body).Decode(&view)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var route *adminRoute
	for i := range view.Routes {
		if view.Routes[i].Stream == "ADM" {
			route = &view.Routes[i]
		}
	}
	if route == nil || route.Open != 3 || route.Keys["one"] != 2 || route.Keys["two"] != 1 {
		t.Fatalf("admin view routes %+v, want ADM with 3 open, one:2 two:1", view.Routes)
	}
	found := false
	for _, f := range view.Feeds {
		found = found || (f.Stream == "ADM" && f.Ready && f.Subscriptions == 3 && f.TailRunning && f.TailSince != "")
	}
	if !found {
		t.Fatalf("admin view feeds %+v, want ADM ready with 3 subscriptions", view.Feeds)
	}

	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://localhost:%d/sse/close?key=one", adminPort), nil)
	req.Header.Set("Origin", fmt.Sprintf("http://localhost:%d", adminPort))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("close: %d", resp.StatusCode)
	}
	for _, s := range []*sseStream{a, b} {
		if ev := s.next(); ev.Type != "closed" {
			t.Fatalf("got %+v, want the closed event", ev)
		}
		s.expectEnd()
	}
	c.expectQuiet(100 * time.Millisecond)

	resp, err = http.Post(fmt.Sprintf("http://localhost:%d/sse/close", adminPort), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatalf("close without a key: %d, want 400", resp.StatusCode)
	}
}

func TestPresenceRecords(t *testing.T) {
	loadSite(t, `sse /pres pres.> {
		stream PRES
		client_key {query.user}
		presence_subject presence.{query.user}
	}`)
	nc, err := nats.Connect("nats://" + embeddedAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	records := make(chan presenceRecord, 16)
	sub, err := nc.Subscribe("presence.>", func(m *nats.Msg) {
		var r presenceRecord
		if json.Unmarshal(m.Data, &r) == nil {
			records <- r
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	expect := func(state string) {
		t.Helper()
		select {
		case r := <-records:
			if r.Key != "ann" || r.State != state || r.Node != keyNode {
				t.Fatalf("record %+v, want ann %s from %s", r, state, keyNode)
			}
		case <-time.After(waitLong):
			t.Fatalf("no %s record", state)
		}
	}
	first := openLive(t, "/pres?user=ann", "PRES", 1)
	expect(presenceOnline)
	second := openLive(t, "/pres?user=ann", "PRES", 2) // not the first: no record
	first.close()
	second.close()
	expect(presenceOffline)
	select {
	case r := <-records:
		t.Fatalf("extra record %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

// A client nobody here wrote (github.com/tmaxmax/go-sse, examples/clients/go-sse) across several max_lifetime
// ends: it reconnects by itself with Last-Event-ID each time and misses nothing, sees nothing twice.
func TestThirdPartyClientAcrossLifetimeEnds(t *testing.T) {
	bin := goBuild(t, "./examples/clients/go-sse")
	loadSite(t, exampleSite(t, "clients", "retry 2s", "retry 100ms\n\t\tmax_lifetime 700ms"))
	js := embeddedJS(t)
	p := startExample(t, nil, bin, "-url", baseURL+"/news")
	waitClients(t, "NEWS", 1)
	before := testutil.ToFloat64(metrics.lifetimeEnds.WithLabelValues("NEWS"))
	var want []clientEvent
	for i := range 60 { // 3 s of events: four or more lifetime ends
		data := strconv.Itoa(i)
		publish(t, js, "news.updates", "", data)
		want = append(want, clientEvent{Type: "message", Data: data})
		time.Sleep(50 * time.Millisecond)
	}
	checkIncreasingIDs(t, p.expect(want...))
	if n := testutil.ToFloat64(metrics.lifetimeEnds.WithLabelValues("NEWS")) - before; n < 3 {
		t.Fatalf("%v lifetime ends during the run, want several", n)
	}
}
