package faults

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Result is what one run measured.
type Result struct {
	Seed      uint64        `json:"seed"`
	Clients   int           `json:"clients"` // including one probe per node
	Nodes     int           `json:"nodes"`
	Rate      float64       `json:"rate"`
	Published int           `json:"published"`
	Acked     int           `json:"acked"`
	Stored    int           `json:"stored"`
	AckedGone int           `json:"acked_gone"` // acknowledged, gone from the stream, no fault removing messages
	Conflicts int           `json:"conflicts"`  // acknowledged at one sequence, stored at another
	Rows      []Row         `json:"rows"`       // per fault, in the order they first ran; "baseline" before the first
	Total     Row           `json:"total"`
	Windows   []WindowLive  `json:"windows"`
	KV        *KVResult     `json:"kv"`
	Samples   []string      `json:"samples,omitempty"`   // some of the violations, for a reproduction
	SelfTest  string        `json:"self_test"`           // the checker, fed a tampered copy of one client
	Diagnosis string        `json:"diagnosis,omitempty"` // file with the timelines of clients with violations
	Failures  []string      `json:"failures,omitempty"`
	Elapsed   time.Duration `json:"elapsed_ns"`
}

// Row sums the violations of every event published while a fault (of one
// kind) was the latest to start, and the time until live again after it.
type Row struct {
	Fault       string         `json:"fault"`
	Runs        int            `json:"runs"`
	Events      int64          `json:"events"` // deliveries to clients
	Lost        int            `json:"lost"`
	Duplicated  int            `json:"duplicated"`
	Reordered   int            `json:"reordered"`
	Unexpected  int            `json:"unexpected"`
	IDMismatch  int            `json:"id_mismatch"`
	Excused     int            `json:"excused"` // skipped by true resets
	Resets      map[string]int `json:"resets"`
	FalseResets map[string]int `json:"false_resets"`
	Live        LiveDist       `json:"live_ms"`
}

func (t *Row) add(r Row) {
	t.Runs += r.Runs
	t.Events += r.Events
	t.Lost += r.Lost
	t.Duplicated += r.Duplicated
	t.Reordered += r.Reordered
	t.Unexpected += r.Unexpected
	t.IDMismatch += r.IDMismatch
	t.Excused += r.Excused
	for k, v := range r.Resets {
		t.Resets[k] += v
	}
	for k, v := range r.FalseResets {
		t.FalseResets[k] += v
	}
}

// rowSet keeps one Row per fault kind, in the order they first ran, after
// the baseline (events before the first fault).
type rowSet struct {
	rows  map[string]*Row
	order []string
}

func newRowSet(windows []window) *rowSet {
	s := &rowSet{rows: map[string]*Row{}}
	s.get("baseline")
	for _, w := range windows {
		s.get(w.Fault).Runs++
	}
	return s
}

func (s *rowSet) get(name string) *Row {
	r := s.rows[name]
	if r == nil {
		r = &Row{Fault: name, Resets: map[string]int{}, FalseResets: map[string]int{}}
		s.rows[name] = r
		s.order = append(s.order, name)
	}
	return r
}

// list gives the rows and their total.
func (s *rowSet) list() ([]Row, Row) {
	total := Row{Fault: "total", Resets: map[string]int{}, FalseResets: map[string]int{}}
	var out []Row
	for _, name := range s.order {
		out = append(out, *s.rows[name])
		total.add(*s.rows[name])
	}
	return out, total
}

// publishWindow gives the fault during which event n was first published.
func publishWindow(windows []window, sent []published) func(n int64) string {
	at := windowFinder(windows)
	return func(n int64) string {
		if n < 1 || n > int64(len(sent)) {
			return "baseline"
		}
		return at(sent[n-1].At)
	}
}

// windowFinder gives the fault that most recently started at t (unix ns).
func windowFinder(windows []window) func(t int64) string {
	return func(t int64) string {
		i := sort.Search(len(windows), func(i int) bool { return windows[i].Start.UnixNano() > t })
		if i == 0 {
			return "baseline"
		}
		return windows[i-1].Fault
	}
}

func (r Row) violations() int {
	n := r.Lost + r.Duplicated + r.Reordered + r.Unexpected + r.IDMismatch
	for _, v := range r.FalseResets {
		n += v
	}
	return n
}

// LiveDist is the time from a fault's end (Ready) to the first event
// published after it reaching each node, over every node and occurrence.
type LiveDist struct {
	N       int   `json:"n"`
	P50     int64 `json:"p50"`
	P95     int64 `json:"p95"`
	Max     int64 `json:"max"`
	NotLive int   `json:"not_live"` // a node that got no new event before the run ended
}

// WindowLive is one fault occurrence.
type WindowLive struct {
	Fault  string    `json:"fault"`
	Start  time.Time `json:"start"`
	Ready  time.Time `json:"ready"`
	Detail string    `json:"detail"`
	LiveMs []int64   `json:"live_ms"` // per node; -1 never live again
	// AckMs: from Ready to NATS acknowledging the first event published
	// after it (the stream writable again); -1 never.
	AckMs int64 `json:"ack_ms"`
}

// OK is the pass condition: nothing lost, duplicated or reordered, no reset
// the stream does not bear out, no fault that could not be applied.
func (r *Result) OK() bool {
	return r.Total.violations() == 0 && (r.KV == nil || r.KV.Total.violations() == 0) && len(r.Failures) == 0 && !strings.HasPrefix(r.SelfTest, "FAILED") && r.AckedGone == 0 && r.Conflicts == 0
}

func judge(cfg Config, h history, sent []published, clients []*sseClient, windows []window, removes bool) *Result {
	res := &Result{Seed: cfg.Seed, Clients: len(clients), Nodes: cfg.Nodes, Rate: cfg.Rate, Published: len(sent),
		Conflicts: h.conflicts}
	for _, p := range sent {
		if p.Seq > 0 {
			res.Acked++
		}
	}
	for _, k := range h.events {
		if k.Stored {
			res.Stored++
		}
	}
	if !removes {
		res.AckedGone = h.ackedGone
	}
	rows := newRowSet(windows)
	row := rows.get
	windowAt := windowFinder(windows)
	byPub := publishWindow(windows, sent)
	describe := func(c *sseClient, n int64, what string) string {
		via := "load balancer"
		if c.node >= 0 {
			via = fmt.Sprintf("node %d", c.node+1)
		}
		subj, seq := "?", uint64(0)
		if n >= 1 && n <= int64(len(sent)) {
			subj, seq = sent[n-1].Subject, sent[n-1].Seq
		}
		return fmt.Sprintf("client %d (%s, topics %v): %s n=%d %s seq %d, published during %s",
			c.idx, via, c.topics, what, n, subj, seq, byPub(n))
	}
	sample := func(s string) {
		if len(res.Samples) < 30 {
			res.Samples = append(res.Samples, s)
		}
	}
	var records [][]received
	for _, c := range clients {
		c.mu.Lock()
		records = append(records, c.events)
		c.mu.Unlock()
	}
	h.learnEpochs(records)
	var diag diagnosis
	for _, c := range clients {
		c.mu.Lock()
		events, resets := c.events, c.resets
		c.mu.Unlock()
		v := checkClient(h, c.topics, events, resets, replayLimit)
		diag.client(c, h, sent, v)
		for _, e := range events {
			row(byPub(e.N)).Events++
		}
		for _, n := range v.Lost {
			row(byPub(n)).Lost++
			sample(describe(c, n, "lost"))
		}
		for _, n := range v.Duplicated {
			row(byPub(n)).Duplicated++
			sample(describe(c, n, "duplicated"))
		}
		for _, n := range v.Reordered {
			row(byPub(n)).Reordered++
			sample(describe(c, n, "reordered"))
		}
		for _, rs := range resets {
			row(windowAt(rs.At)).Resets[rs.Reason]++
		}
		// Unexpected, id mismatches, excused and false resets are per client;
		// they go to the window of the client's first reset, or the baseline.
		where := "baseline"
		if len(resets) > 0 {
			where = windowAt(resets[0].At)
		}
		r := row(where)
		r.Unexpected += v.Unexpected
		r.IDMismatch += v.IDMismatch
		r.Excused += v.Excused
		for k, n := range v.FalseReset {
			r.FalseResets[k] += n
			sample(fmt.Sprintf("client %d: %d reset(s) %q the stream does not bear out", c.idx, n, k))
		}
	}
	res.Diagnosis = diag.write(cfg.Dir)
	res.SelfTest = selfTest(h, clients)
	live := map[string][]int64{}
	for _, w := range windows {
		wl := WindowLive{Fault: w.Fault, Start: w.Start, Ready: w.Ready, Detail: w.Detail, AckMs: -1}
		if at := firstAck(sent, w.Ready); !at.IsZero() {
			wl.AckMs = at.Sub(w.Ready).Milliseconds()
		}
		for _, c := range clients {
			if c.node < 0 {
				continue
			}
			ms := liveAfter(c, sent, w.Ready)
			wl.LiveMs = append(wl.LiveMs, ms)
			live[w.Fault] = append(live[w.Fault], ms)
		}
		res.Windows = append(res.Windows, wl)
	}
	var all []int64
	for _, name := range rows.order {
		rows.get(name).Live = dist(live[name])
		all = append(all, live[name]...)
	}
	res.Rows, res.Total = rows.list()
	res.Total.Live = dist(all)
	return res
}

// liveAfter is how long after ready the probe got its first event published
// at or after ready, in ms; -1 if it never did.
func liveAfter(c *sseClient, sent []published, ready time.Time) int64 {
	r := ready.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.events {
		if e.At < r || e.N < 1 || e.N > int64(len(sent)) {
			continue
		}
		if sent[e.N-1].At >= r {
			return (e.At - r) / int64(time.Millisecond)
		}
	}
	return -1
}

func dist(v []int64) LiveDist {
	var ok []int64
	d := LiveDist{}
	for _, x := range v {
		if x < 0 {
			d.NotLive++
		} else {
			ok = append(ok, x)
		}
	}
	slices.Sort(ok)
	d.N = len(ok)
	if len(ok) == 0 {
		return d
	}
	// Nearest rank: the smallest value with at least p of them at or below it.
	q := func(p float64) int64 { return ok[max(0, int(math.Ceil(p*float64(len(ok))))-1)] }
	d.P50, d.P95, d.Max = q(0.5), q(0.95), ok[len(ok)-1]
	return d
}

// Markdown renders the result as the table RELIABILITY.md publishes.
func (r *Result) Markdown(command string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d clients (%d through the load balancer, one probe per node), %d Caddy nodes, 3 NATS servers, R3 stream, %.0f events/s; %d events published, %d acknowledged; seed %d; %s.\n\n",
		r.Clients, r.Clients-r.Nodes, r.Nodes, r.Rate, r.Published, r.Acked, r.Seed, r.Elapsed.Round(time.Second))
	b.WriteString("| fault | runs | deliveries | lost | dup | reordered | wrong subject / id | resets (reason: count) | false resets | live again ms p50 / p95 / max |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---|---:|---|\n")
	for _, row := range append(append([]Row(nil), r.Rows...), r.Total) {
		live := "-"
		if row.Live.N > 0 {
			live = fmt.Sprintf("%d / %d / %d", row.Live.P50, row.Live.P95, row.Live.Max)
		}
		if row.Live.NotLive > 0 {
			live += fmt.Sprintf(" (%d never)", row.Live.NotLive)
		}
		name := row.Fault
		if row.Fault == "total" {
			name = "**total**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d / %d | %s | %s | %s |\n", name, row.Runs, row.Events, row.Lost,
			row.Duplicated, row.Reordered, row.Unexpected, row.IDMismatch, counts(row.Resets), falseCount(row.FalseResets), live)
	}
	b.WriteString("\n| # | fault | what happened | live again per node, ms | stream writable again, ms |\n|---:|---|---|---|---:|\n")
	for i, w := range r.Windows {
		var per []string
		for _, ms := range w.LiveMs {
			if ms < 0 {
				per = append(per, "never")
			} else {
				per = append(per, fmt.Sprint(ms))
			}
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d |\n", i+1, w.Fault, w.Detail, strings.Join(per, ", "), w.AckMs)
	}
	if r.KV != nil && r.KV.Clients > 0 {
		fmt.Fprintf(&b, "\nKV-style stream (MaxMsgsPerSubject 1, /kv): %d clients through the load balancer, %d events published, %d kept. "+
			"Lost = subjects whose latest message a client never got; every reset is false there.\n\n", r.KV.Clients, r.KV.Published, r.KV.Stored)
		b.WriteString("| fault | deliveries | latest missing | dup | reordered | resets (reason: count) |\n|---|---:|---:|---:|---:|---|\n")
		for _, row := range append(append([]Row(nil), r.KV.Rows...), r.KV.Total) {
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", row.Fault, row.Events, row.Lost, row.Duplicated, row.Reordered+row.Unexpected, counts(row.Resets))
		}
	}
	fmt.Fprintf(&b, "\nChecker self-test: %s.\n", r.SelfTest)
	if command != "" {
		fmt.Fprintf(&b, "\n`%s`\n", command)
	}
	return b.String()
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func falseCount(m map[string]int) string {
	n := 0
	for _, v := range m {
		n += v
	}
	if n == 0 {
		return "0"
	}
	return fmt.Sprintf("%d (%s)", n, counts(m))
}

// selfTest proves the checker sees what it is meant to on this run's real
// records: a copy of one client's events with one removed, one swapped with
// its successor and one repeated must give exactly 1 lost, 1 reordered, 1
// duplicated.
func selfTest(h history, clients []*sseClient) string {
	for _, c := range clients {
		c.mu.Lock()
		events, resets := append([]received(nil), c.events...), append([]resetSeen(nil), c.resets...)
		c.mu.Unlock()
		// The tampering happens before any reset.
		if len(events) < 20 || len(resets) > 0 && resets[0].Before < 13 {
			continue
		}
		base := checkClient(h, c.topics, events, resets, replayLimit)
		if !base.ok() {
			continue
		}
		t := append([]received(nil), events[:5]...)
		t = append(t, events[6:10]...)        // events[5] lost
		t = append(t, events[11], events[10]) // reordered
		t = append(t, events[12:]...)
		t = append(t, events[len(events)-1]) // duplicated
		for i := range resets {
			resets[i].Before-- // one event fewer before each reset
		}
		v := checkClient(h, c.topics, t, resets, replayLimit)
		got := fmt.Sprintf("lost %d, reordered %d, duplicated %d", len(v.Lost), len(v.Reordered), len(v.Duplicated))
		if len(v.Lost) == 1 && len(v.Reordered) == 1 && len(v.Duplicated) == 1 && v.Lost[0] == events[5].N {
			return fmt.Sprintf("ok (client %d tampered: %s)", c.idx, got)
		}
		return fmt.Sprintf("FAILED (client %d tampered: %s; want 1 each)", c.idx, got)
	}
	return "skipped: no clean client with 20 events"
}
