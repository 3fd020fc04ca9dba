package session

import (
	"slices"
	"testing"
	"testing/synctest"

	"github.com/caddy-sse/caddy-sse/eventid"
)

// TestResume covers every resume rule and reset reason: the stream holds a.x events 1..5 (seq 1..5), the
// client connects, then one live event follows.
func TestResume(t *testing.T) {
	cases := []struct {
		name   string
		ring   int               // events the hub keeps in memory (2: only 4 and 5)
		setup  func(f *fakeFeed) // runs after 1..5 are published
		config func(c *Config)   // adjusts the route's config
		cursor string            // Last-Event-ID
		only   []string          // the client's patterns; default a.>
		want   []string          // data of the events received, resets as reset:<reason>
		source Source            // the replay counted, if any
	}{
		{name: "no cursor gets live events only", want: []string{"live"}},
		{name: "first_event oldest from memory", config: firstEvent(FirstEventOldest, 0),
			want: []string{"1", "2", "3", "4", "5", "live"}, source: SourceMemory},
		{name: "first_event oldest from storage", ring: 2, config: firstEvent(FirstEventOldest, 0),
			want: []string{"1", "2", "3", "4", "5", "live"}, source: SourceStorage},
		{name: "first_event oldest starts at the first stored event", ring: 2, config: firstEvent(FirstEventOldest, 0),
			setup: func(f *fakeFeed) { f.first = 3 }, want: []string{"3", "4", "5", "live"}, source: SourceStorage},
		{name: "first_event last from memory", config: firstEvent(FirstEventLast, 2),
			want: []string{"4", "5", "live"}},
		{name: "first_event last from storage", ring: 2, config: firstEvent(FirstEventLast, 3),
			want: []string{"3", "4", "5", "live"}},
		{name: "malformed id", cursor: "not an id", want: []string{"reset:malformed-id", "live"}},
		{name: "id of another epoch", cursor: "zz-3", want: []string{"reset:stream-changed", "live"}},
		{name: "id at the handover point", cursor: "e1-5", want: []string{"live"}},
		{name: "range from memory", cursor: "e1-2", want: []string{"3", "4", "5", "live"}, source: SourceMemory},
		{name: "range from storage", ring: 2, cursor: "e1-1", want: []string{"2", "3", "4", "5", "live"},
			source: SourceStorage},
		{name: "range of other subjects is empty", cursor: "e1-0", only: []string{"b.>"},
			want: []string{"live-b"}, source: SourceMemory},
		{name: "too many events in memory", cursor: "e1-1", config: replayLimit(2),
			want: []string{"reset:too-many-events", "live"}},
		{name: "too many events in storage", ring: 2, cursor: "e1-1", config: replayLimit(2),
			want: []string{"reset:too-many-events", "live"}},
		{name: "history expired", ring: 2, cursor: "e1-1", setup: func(f *fakeFeed) { f.first = 3 },
			want: []string{"reset:history-expired", "live"}},
		{name: "id beyond the end", cursor: "e1-9", want: []string{"reset:id-beyond-end", "live"}},
		{name: "id ahead of this node", cursor: "e1-7",
			setup: func(f *fakeFeed) { f.store("a.x", "6", "7") }, want: []string{"live"}},
		{name: "stream recreated before the node noticed", ring: 2, cursor: "e1-1",
			setup: func(f *fakeFeed) { f.epoch = "e2" }, want: []string{"reset:stream-changed", "live"}},
		{name: "id ahead in a recreated stream", cursor: "e1-7",
			setup: func(f *fakeFeed) { f.epoch = "e2" }, want: []string{"reset:stream-changed", "live"}},
		{name: "a batch read from another incarnation", ring: 2, cursor: "e1-1",
			setup: func(f *fakeFeed) { f.batchEpoch = "e2" }, want: []string{"reset:stream-changed", "live"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeFeed("e1", cmpOr(tc.ring, 8))
				f.publish("a.x", "1", "2", "3", "4", "5")
				if tc.setup != nil {
					tc.setup(f)
				}
				cfg := testConfig(f)
				client := Client{LastEventID: tc.cursor, Patterns: tc.only}
				if tc.config != nil {
					tc.config(cfg)
				}
				r := serve(t, f, cfg, client)
				f.dispatch() // events the node had not seen yet (an id ahead of it)
				f.publish("a.x", "live")
				last := f.publish("b.y", "live-b")
				synctest.Wait()

				if got := r.rec.data(); !slices.Equal(got, tc.want) {
					t.Fatalf("got %q, want %q", got, tc.want)
				}
				for _, ev := range r.rec.events() {
					epoch, seq, err := eventid.Parse(ev.ID)
					if err != nil || epoch != "e1" {
						t.Errorf("event %+v: id not of epoch e1", ev)
					}
					if ev.Type == "reset" && seq != 5 {
						t.Errorf("reset id %s: want the handover point e1-5", ev.ID)
					}
					if ev.Data == "live" && seq != last-1 {
						t.Errorf("live id %s, want seq %d", ev.ID, last)
					}
				}
				var wantSources []Source
				if tc.source != "" {
					wantSources = []Source{tc.source}
				}
				if got := r.replays(); !slices.Equal(got, wantSources) {
					t.Errorf("replays counted %q, want %q", got, wantSources)
				}
				if ended, err := r.ended(); ended {
					t.Fatalf("session ended: %v", err)
				}
			})
		})
	}
}

func firstEvent(fe FirstEvent, n int) func(*Config) {
	return func(c *Config) { c.FirstEvent, c.FirstEventCount = fe, n }
}

func replayLimit(n int) func(*Config) { return func(c *Config) { c.ReplayLimit = n } }

func cmpOr(v, fallback int) int {
	if v == 0 {
		return fallback
	}
	return v
}
