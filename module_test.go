package caddysse

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/session"
)

func TestStreamHeadersAndFirstFrames(t *testing.T) {
	loadSite(t, `sse /headers headers.> {
		stream HEADERS
		retry 1500ms
	}`)
	s := openStream(t, baseURL+"/headers", nil)
	h := s.resp.Header
	if s.resp.StatusCode != 200 {
		t.Fatalf("status %d", s.resp.StatusCode)
	}
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	s.waitOpen()
	for _, want := range []string{"", "retry: 1500", ""} {
		select {
		case line := <-s.raw:
			if line != want {
				t.Fatalf("line %q, want %q", line, want)
			}
		case <-time.After(waitLong):
			t.Fatal("first frames not flushed")
		}
	}
}

func TestFanOutManyClientsInOrder(t *testing.T) {
	loadSite(t, `sse /fanout fanout.> {
		stream FANOUT
	}`)
	js := embeddedJS(t)
	const clients, events = 40, 200
	streams := make([]*sseStream, clients)
	for i := range streams {
		streams[i] = openStream(t, baseURL+"/fanout", nil)
		streams[i].waitOpen()
	}
	waitSubscribed(t, "FANOUT", clients)
	var want []string
	for i := range events {
		data := fmt.Sprintf("event %d\nline two\r\nline three", i)
		publish(t, js, "fanout.room"+strconv.Itoa(i%3), "tick", data)
		want = append(want, strings.NewReplacer("\r\n", "\n").Replace(data))
	}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func(s *sseStream) {
			defer wg.Done()
			var prev uint64
			for i, w := range want {
				ev := s.next()
				if ev.Data != w || ev.Type != "tick" {
					t.Errorf("event %d: %q/%q, want %q/tick", i, ev.Data, ev.Type, w)
					return
				}
				_, seq, err := eventid.Parse(ev.ID)
				if err != nil || seq <= prev {
					t.Errorf("event %d: id %q not increasing after %d (%v)", i, ev.ID, prev, err)
					return
				}
				prev = seq
			}
		}(s)
	}
	wg.Wait()
}

func TestResumeExactlyOnce(t *testing.T) {
	loadSite(t, `sse /resume resume.> {
		stream RESUME
		last_event_id_param cursor
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/resume", "RESUME", 1)
	publish(t, js, "resume.x", "", "1")
	publish(t, js, "resume.x", "", "2")
	got := s.expectData("1", "2")
	s.close()

	for i := 3; i <= 7; i++ {
		publish(t, js, "resume.x", "", strconv.Itoa(i))
	}
	cases := []struct {
		name   string
		url    string
		header map[string]string
	}{
		{"header", "/resume", map[string]string{"Last-Event-ID": got[1].ID}},
		{"query fallback", "/resume?cursor=" + got[1].ID, nil},
		{"header wins over query", "/resume?cursor=" + got[0].ID, map[string]string{"Last-Event-ID": got[1].ID}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := openStream(t, baseURL+tc.url, tc.header)
			r.expectData("3", "4", "5", "6", "7")
			r.expectQuiet(200 * time.Millisecond)
		})
	}
	// live continues after the replay, with nothing repeated
	r := openStream(t, baseURL+"/resume", map[string]string{"Last-Event-ID": got[1].ID})
	r.expectData("3", "4", "5", "6", "7")
	publish(t, js, "resume.x", "", "8")
	r.expectData("8")
}

func TestResumeFromJetStreamAfterFeedChange(t *testing.T) {
	loadSite(t, `sse /feedchange feedchange.> {
		stream FEEDCHANGE
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/feedchange?x", "FEEDCHANGE", 1)
	publish(t, js, "feedchange.a", "", "1")
	first := s.expectData("1")[0]
	s.close()
	for i := 2; i <= 5; i++ {
		publish(t, js, "feedchange.a", "", strconv.Itoa(i))
	}
	// A different event header is a different feed: a fresh hub with an empty ring, so the replay must come
	// from JetStream.
	loadSite(t, `sse /feedchange feedchange.> {
		stream FEEDCHANGE
		event_header Other-Header
	}`)
	r := openStream(t, baseURL+"/feedchange", map[string]string{"Last-Event-ID": first.ID})
	r.expectData("2", "3", "4", "5")
	publish(t, js, "feedchange.a", "", "6")
	r.expectData("6")
}

func TestResetCases(t *testing.T) {
	loadSite(t, `sse /resets resets.> {
		stream RESETS
		replay_limit 3
		reset_event gone
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/resets", "RESETS", 1)
	publish(t, js, "resets.a", "", "1")
	first := s.expectData("1")[0]
	epoch, seq, _ := eventid.Parse(first.ID)
	s.close()
	var last uint64
	for i := 2; i <= 6; i++ {
		last = publish(t, js, "resets.a", "", strconv.Itoa(i))
	}
	waitDispatched(t, "RESETS", last) // the reset's id is the node's position, so let it catch up first
	cases := []struct {
		name, id string
		reason   session.Reason
	}{
		{"malformed", "not an id", session.ReasonMalformedID},
		{"other epoch", eventid.Format("zzz", seq), session.ReasonStreamChanged},
		{"beyond end", eventid.Format(epoch, seq+1000), session.ReasonIDBeyondEnd},
		{"too many", first.ID, session.ReasonTooManyEvents},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := openStream(t, baseURL+"/resets", map[string]string{"Last-Event-ID": tc.id})
			if r.resp.StatusCode != 200 {
				t.Fatalf("status %d, want 200", r.resp.StatusCode)
			}
			ev := r.next()
			if ev.Type != "gone" || ev.Data != `{"reason":"`+string(tc.reason)+`"}` {
				t.Fatalf("got %+v, want a gone event with reason %s", ev, tc.reason)
			}
			if _, resetSeq, err := eventid.Parse(ev.ID); err != nil || resetSeq != last {
				t.Fatalf("reset id %q: want the current position %d", ev.ID, last)
			}
			last = publish(t, js, "resets.a", "", "live-"+tc.name)
			r.expectData("live-" + tc.name)
			// reconnecting with the reset's id resumes cleanly
			again := openStream(t, baseURL+"/resets", map[string]string{"Last-Event-ID": ev.ID})
			again.expectData("live-" + tc.name)
		})
	}
}

func TestHistoryExpiredGetsReset(t *testing.T) {
	loadSite(t, `sse /expired expired.> {
		stream EXPIRED
	}`)
	js := embeddedJS(t)
	s := openLive(t, "/expired", "EXPIRED", 1)
	publish(t, js, "expired.a", "", "1")
	first := s.expectData("1")[0]
	s.close()
	publish(t, js, "expired.a", "", "2")
	stream, err := js.Stream(t.Context(), "EXPIRED")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Purge(t.Context()); err != nil {
		t.Fatal(err)
	}
	publish(t, js, "expired.a", "", "3")
	// a fresh feed (new event header) has no ring, so the purge is visible: history is gone
	loadSite(t, `sse /expired expired.> {
		stream EXPIRED
		event_header X-Other
	}`)
	r := openStream(t, baseURL+"/expired", map[string]string{"Last-Event-ID": first.ID})
	ev := r.next()
	if ev.Type != "reset" || !strings.Contains(ev.Data, string(session.ReasonHistoryExpired)) {
		t.Fatalf("got %+v, want reset %s", ev, session.ReasonHistoryExpired)
	}
}

func TestFirstEventVariants(t *testing.T) {
	loadSite(t, `sse /firstevent/new firstevent.> {
		stream FIRSTEVENT
	}
	sse /firstevent/oldest firstevent.> {
		stream FIRSTEVENT
		first_event oldest
	}
	sse /firstevent/last firstevent.> {
		stream FIRSTEVENT
		first_event last 2
	}`)
	js := embeddedJS(t)
	var last uint64
	for i := 1; i <= 4; i++ {
		last = publish(t, js, "firstevent.a", "", strconv.Itoa(i))
	}
	waitDispatched(t, "FIRSTEVENT", last)
	probe := openStream(t, baseURL+"/firstevent/last", nil)
	probe.expectData("3", "4")

	n := openLive(t, "/firstevent/new", "FIRSTEVENT", 2)
	o := openStream(t, baseURL+"/firstevent/oldest", nil)
	o.expectData("1", "2", "3", "4")
	publish(t, js, "firstevent.a", "", "5")
	n.expectData("5")
	o.expectData("5")
	probe.expectData("5")

	feeds := 0
	feedPool.Range(func(_, v any) bool {
		if v.(*feed).tail.Stream.Name == "FIRSTEVENT" {
			feeds++
		}
		return true
	})
	if feeds != 1 {
		t.Fatalf("three routes on stream FIRSTEVENT run %d tails, want one", feeds)
	}
}

func TestTopicParamScoping(t *testing.T) {
	loadSite(t, `sse /topics topics.rooms.{query.tenant}.> {
		stream TOPICS
		topic_param topic
	}
	route /t8auth {
		vars user ""
		sse topics.users.{vars.user} {
			stream T8U
		}
	}`)
	cases := []struct {
		name string
		url  string
		want int
	}{
		{"template only", "/topics?tenant=acme", 200},
		{"topic inside", "/topics?tenant=acme&topic=topics.rooms.acme.lobby", 200},
		{"topic wildcard inside", "/topics?tenant=acme&topic=topics.rooms.acme.*", 200},
		{"topic of another tenant", "/topics?tenant=acme&topic=topics.rooms.evil.lobby", 403},
		{"topic widening", "/topics?tenant=acme&topic=topics.>", 403},
		{"topic not a subject", "/topics?tenant=acme&topic=topics..x", 400},
		{"placeholder empty", "/topics", 400},
		{"placeholder with dot", "/topics?tenant=a.b", 400},
		{"placeholder star", "/topics?tenant=*", 400},
		{"placeholder gt", "/topics?tenant=%3E", 400},
		{"placeholder space", "/topics?tenant=a%20b", 400},
		{"identity missing", "/t8auth", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, baseURL+tc.url, nil)
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	js := embeddedJS(t)
	publish(t, js, "topics.rooms.acme.a", "", "0")
	s := openLive(t, "/topics?tenant=acme&topic=topics.rooms.acme.b&topic=topics.rooms.acme.c", "TOPICS", 1)
	publish(t, js, "topics.rooms.acme.a", "", "a1")
	publish(t, js, "topics.rooms.other.b", "", "other")
	publish(t, js, "topics.rooms.acme.b", "", "b1")
	publish(t, js, "topics.rooms.acme.c", "", "c1")
	publish(t, js, "topics.rooms.acme.b", "", "b2")
	s.expectData("b1", "c1", "b2")
}

func TestMaxConnectionsTurnsAwayWithRetry(t *testing.T) {
	loadSite(t, `sse /maxconn maxconn.> {
		stream MAXCONN
		max_connections 2
		retry 1s
	}`)
	a := openStream(t, baseURL+"/maxconn", nil)
	a.waitOpen()
	b := openStream(t, baseURL+"/maxconn", nil)
	b.waitOpen()
	resp, err := http.Get(baseURL + "/maxconn")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body) // the server ends this response at once
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("turned-away client got %d %s: must be 200 event-stream so EventSource keeps retrying",
			resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	retryAfter, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	if !strings.HasPrefix(string(body), "retry: ") || retryAfter < 2 {
		t.Fatalf("body %q, Retry-After %q: want a back-off of at least 2s", body, resp.Header.Get("Retry-After"))
	}
	a.close()
	eventually(t, "a freed slot is usable", func() bool {
		c := openStream(t, baseURL+"/maxconn", nil)
		defer c.close()
		select {
		case line := <-c.raw:
			return line == ": ok"
		case <-time.After(waitLong):
			return false
		}
	})
}

func TestMethodNotAllowed(t *testing.T) {
	loadSite(t, `sse /methods methods.> {
		stream METHODS
	}`)
	resp, err := http.Post(baseURL+"/methods", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET" {
		t.Fatalf("POST without publish: %d Allow=%q, want 405 Allow=GET", resp.StatusCode, resp.Header.Get("Allow"))
	}
}
