package faults

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// diagnosis collects, for every client with a violation, what it saw around
// it: its streams (node, Last-Event-ID sent), resets, and the events it got
// just before and after each missing one. It goes to violations.txt.
type diagnosis struct {
	b strings.Builder
	n int
}

const diagnosedClients = 20

func clock(ns int64) string { return time.Unix(0, ns).UTC().Format("15:04:05.000") }

func (d *diagnosis) client(c *sseClient, h history, sent []published, v clientCheck) {
	if v.ok() || d.n >= diagnosedClients {
		return
	}
	d.n++
	c.mu.Lock()
	events, resets, streams := c.events, c.resets, c.streams
	c.mu.Unlock()
	fmt.Fprintf(&d.b, "client %d, topics %v, node %d (-1: load balancer): lost %v duplicated %v reordered %v false resets %v\n",
		c.idx, c.topics, c.node, head(v.Lost), head(v.Duplicated), head(v.Reordered), v.FalseReset)
	for _, s := range streams {
		fmt.Fprintf(&d.b, "  %s stream on %s, Last-Event-ID %q, after %d events\n", clock(s.At), s.Node, s.LastID, s.Before)
	}
	for _, r := range resets {
		fmt.Fprintf(&d.b, "  %s reset %s id %d-%d after %d events\n", clock(r.At), r.Reason, r.Epoch, r.Seq, r.Before)
	}
	key := map[int64]uint64{}
	for _, k := range h.events {
		key[k.N] = k.key()
	}
	for _, n := range head(v.Lost) {
		p := sent[n-1]
		fmt.Fprintf(&d.b, "  lost n=%d %s seq %d: published %s, acknowledged %s\n", n, p.Subject, p.Seq, clock(p.At), clock(p.AckAt))
		// Where it should have come: the first event received after it in stream order.
		i := sort.Search(len(events), func(i int) bool { return key[events[i].N] > key[n] })
		for j := max(0, i-3); j < min(len(events), i+3); j++ {
			e := events[j]
			fmt.Fprintf(&d.b, "    #%d %s n=%d seq %d (stream %d)\n", j, clock(e.At), e.N, e.Seq, streamOf(streams, j))
		}
	}
}

// streamOf is the index of the stream that delivered event i.
func streamOf(streams []streamSeen, i int) int {
	s := sort.Search(len(streams), func(k int) bool { return streams[k].Before > i })
	return s - 1
}

func head(v []int64) []int64 { return v[:min(len(v), 5)] }

func (d *diagnosis) write(dir string) string {
	if d.n == 0 {
		return ""
	}
	path := dir + "/violations.txt"
	if err := os.WriteFile(path, []byte(d.b.String()), 0o644); err != nil {
		return ""
	}
	return path
}
