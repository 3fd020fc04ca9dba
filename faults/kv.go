package faults

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The KV-style stream: one message kept per subject (MaxMsgsPerSubject 1),
// served on /kv. A message superseded before a node reads it is skipped
// legitimately, so the promise there is weaker and different: in order,
// never twice, no reset (nothing is ever lost history: the stream has no
// other limit), and every client ends holding the latest message of every
// subject written after it joined.
const (
	kvStreamName = "FAULTS_KV"
	kvPath       = "/kv"
	kvRate       = 20 // events per second, besides the bursts
)

var kvTopics = []string{"kv.k0", "kv.k1", "kv.k2", "kv.k3"}

func createKVStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	return ensureStream(ctx, js, jetstream.StreamConfig{
		Name:              kvStreamName,
		Subjects:          []string{"kv.>"},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		MaxMsgsPerSubject: 1,
		Duplicates:        2 * time.Minute,
	})
}

// kvBurst: five bursts of 2,000 async publishes to one subject, a second
// apart, while one node's links to NATS are black-holed: when they heal,
// that node's tail resumes behind messages the bursts superseded meanwhile.
func kvBurst(e *env) (window, error) {
	w := window{Fault: "kv-burst", Start: time.Now()}
	_, n := e.pickNode()
	n.setLinks(modeBlackhole, 0)
	for i := range 5 {
		if i > 0 {
			if err := e.sleep(time.Second); err != nil {
				n.setLinks(modePass, 0)
				return w, err
			}
		}
		e.kvPub.burst(e.ctx, kvTopics[0], 2000)
	}
	n.setLinks(modePass, 0)
	w.Ready = time.Now()
	w.Detail = fmt.Sprintf("5 x 2,000 publishes to %s in %.1fs, %s black-holed meanwhile", kvTopics[0], w.Ready.Sub(w.Start).Seconds(), n.name)
	return w, e.sleep(3 * time.Second)
}

// kvClientCheck is the verdict on one client of the KV-style stream.
type kvClientCheck struct {
	Received     int
	Duplicated   []int64
	Reordered    []int64
	Unexpected   int
	NotConverged []int64 // the latest message of a subject, never received
	Resets       map[string]int
}

func checkKVClient(h history, events []received, resets []resetSeen) kvClientCheck {
	out := kvClientCheck{Received: len(events), Resets: map[string]int{}}
	byN := make(map[int64]known, len(h.events))
	for _, k := range h.events {
		byN[k.N] = k
	}
	seen := map[int64]bool{}
	var last, first uint64
	for _, e := range events {
		k, ok := byN[e.N]
		if !ok || k.Seq != e.Seq {
			out.Unexpected++
			continue
		}
		switch {
		case seen[e.N]:
			out.Duplicated = append(out.Duplicated, e.N)
			continue
		case k.key() < last:
			out.Reordered = append(out.Reordered, e.N)
		default:
			last = k.key()
		}
		if first == 0 {
			first = k.key()
		}
		seen[e.N] = true
	}
	for _, rs := range resets {
		out.Resets[rs.Reason]++
	}
	// The latest message of each subject: stored at the end, highest position.
	latest := map[string]known{}
	for _, k := range h.events {
		if k.Stored && k.key() > latest[k.Subject].key() {
			latest[k.Subject] = k
		}
	}
	for _, k := range latest {
		if first != 0 && k.key() >= first && !seen[k.N] {
			out.NotConverged = append(out.NotConverged, k.N)
		}
	}
	return out
}

// judgeKV sums the KV-style stream's clients per fault window: duplicates
// and reorders by the event's publish time, resets by arrival, and subjects
// not converged by the publish time of their latest message. Every reset
// counts as false.
func judgeKV(h history, sent []published, clients []*sseClient, windows []window) *KVResult {
	res := &KVResult{Clients: len(clients), Published: len(sent)}
	for _, k := range h.events {
		if k.Stored {
			res.Stored++
		}
	}
	rows := newRowSet(windows)
	row := rows.get
	at := windowFinder(windows)
	byPub := publishWindow(windows, sent)
	for _, c := range clients {
		c.mu.Lock()
		events, resets := c.events, c.resets
		c.mu.Unlock()
		v := checkKVClient(h, events, resets)
		for _, e := range events {
			row(byPub(e.N)).Events++
		}
		for _, n := range v.Duplicated {
			row(byPub(n)).Duplicated++
		}
		for _, n := range v.Reordered {
			row(byPub(n)).Reordered++
		}
		for _, n := range v.NotConverged {
			row(byPub(n)).Lost++
		}
		row("baseline").Unexpected += v.Unexpected
		for _, rs := range resets {
			r := row(at(rs.At))
			r.Resets[rs.Reason]++
			r.FalseResets[rs.Reason]++
		}
	}
	res.Rows, res.Total = rows.list()
	return res
}

// KVResult is what the KV-style stream's clients saw. Lost counts subjects
// whose latest message a client never received.
type KVResult struct {
	Clients   int   `json:"clients"`
	Published int   `json:"published"`
	Stored    int   `json:"stored"`
	Rows      []Row `json:"rows"`
	Total     Row   `json:"total"`
}
