package caddysse

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/session"
)

// Between a stream being deleted and created again and this node's tail noticing (seconds), JetStream reads
// see the new incarnation while the feed still holds the old epoch. Nothing of the new stream may be handed
// out under an old id: a replay gets a stream-changed reset, and a publish answers the new incarnation's id.
func TestRecreatedStreamBeforeTheTailNotices(t *testing.T) {
	site := `sse /recreate recreate.> {
		stream RECREATE
	}
	sse /recreate/publish recreate.a {
		stream RECREATE
		publish
	}`
	loadSite(t, `sse /before before.> {
		stream BEFORE
	}`) // starts the embedded server
	js := embeddedJS(t)
	cfg := natsjs.StreamConfig{Name: "RECREATE", Subjects: []string{"recreate.>"}}
	old, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		publish(t, js, "recreate.a", "", "old")
	}
	// The feed starts after those events: its memory does not hold them, so a resume reads JetStream.
	loadSite(t, site)
	waitDispatched(t, "RECREATE", 10)
	oldEpoch := eventid.Epoch(old.CachedInfo().Created)

	if err := js.DeleteStream(t.Context(), "RECREATE"); err != nil {
		t.Fatal(err)
	}
	fresh, err := js.CreateStream(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		publish(t, js, "recreate.a", "", "new")
	}
	newEpoch := eventid.Epoch(fresh.CachedInfo().Created)

	s := openStream(t, baseURL+"/recreate", map[string]string{"Last-Event-ID": eventid.Format(oldEpoch, 3)})
	ev := s.next()
	if ev.Type != "reset" || ev.Data != `{"reason":"`+string(session.ReasonStreamChanged)+`"}` {
		t.Fatalf("resume with an old id after the stream was recreated: got %+v, want a %s reset", ev, session.ReasonStreamChanged)
	}
	s.close()

	resp, err := http.Post(baseURL+"/recreate/publish", "text/plain", strings.NewReader("published"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var answer publishAnswer
	if resp.StatusCode != 200 || json.Unmarshal(body, &answer) != nil {
		t.Fatalf("publish: %d %s", resp.StatusCode, body)
	}
	if want := eventid.Format(newEpoch, answer.Seq); answer.ID != want {
		t.Fatalf("publish answered id %s, want %s (the incarnation that stored it)", answer.ID, want)
	}
}
