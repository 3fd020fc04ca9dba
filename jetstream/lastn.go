package jetstream

import "context"

// LastN calls fn, in order, with the n most recent events matching
// req.Filters with seq <= req.Upto (req.After and req.Limit are ignored;
// req.Epoch is checked as by Replay). It finds where they start by probing
// windows that double backwards from Upto, counting matches with the
// consumers' pending counts, then reads the last window, keeping only its
// last n events. fn runs once, with no replay slot held.
func (c *Conn) LastN(ctx context.Context, req ReplayRequest, n int, fn func([]Message) error) error {
	if n <= 0 {
		return nil
	}
	last, err := c.lastN(ctx, req, n)
	if err != nil || last.len() == 0 {
		return err
	}
	return fn(last.ordered())
}

func (c *Conn) lastN(ctx context.Context, req ReplayRequest, n int) (*lastN, error) {
	state, err := c.probeState(ctx, req)
	if err != nil {
		return nil, err
	}
	end := min(req.Upto, state.LastSeq)
	first := max(state.FirstSeq, 1)
	if end < first {
		return newLastN(n), nil
	}

	// Matches after end also count in a consumer's pending; subtract them.
	var after uint64
	if end < state.LastSeq {
		if after, err = c.countWithSlot(ctx, req, end+1); err != nil {
			return nil, err
		}
	}

	want := uint64(n)
	span := want
	for {
		start := first
		if end-first+1 > span {
			start = end - span + 1
		}
		// Once the window reaches the head of the stream there is nothing
		// older to look at (even if the head moved on meanwhile).
		atHead := start == first
		pending, err := c.countWithSlot(ctx, req, start)
		if err != nil {
			return nil, err
		}
		if count := pending - min(after, pending); count < want && !atHead {
			span = grow(span, count, want)
			continue
		}
		last := newLastN(n)
		window := req
		window.After, window.Upto = start-1, end
		r := &rangeReader{conn: c, req: window, next: start}
		err = func() error {
			defer r.close()
			for {
				batch, done, err := r.readBatch(ctx)
				for _, m := range batch {
					last.add(m)
				}
				if err != nil || done {
					return err
				}
			}
		}()
		if err != nil {
			return nil, err
		}
		// Messages published while probing inflate the counts; if the window
		// turned out short, widen it and read again.
		if last.len() < n && !atHead {
			span = grow(span, uint64(last.len()), want)
			continue
		}
		return last, nil
	}
}

// probeState reads the stream's state for LastN, with a slot held.
func (c *Conn) probeState(ctx context.Context, req ReplayRequest) (StreamState, error) {
	release, err := c.acquireReplay(ctx)
	if err != nil {
		return StreamState{}, err
	}
	defer release()
	state, err := c.StreamState(ctx, req.Stream)
	if err == nil && req.Epoch != "" && state.Epoch != req.Epoch {
		err = ErrStreamChanged
	}
	return state, err
}

func (c *Conn) countWithSlot(ctx context.Context, req ReplayRequest, start uint64) (uint64, error) {
	release, err := c.acquireReplay(ctx)
	if err != nil {
		return 0, err
	}
	defer release()
	return c.countMatching(ctx, req.Stream, req.Filters, start)
}

// grow widens a probe window that held count of the want matches needed:
// at least doubling, more when matches are sparse.
func grow(span, count, want uint64) uint64 {
	factor := uint64(2)
	if count == 0 {
		factor = 8
	} else if f := (want + count - 1) / count * 5 / 4; f > factor {
		factor = f
	}
	if span > ^uint64(0)/factor {
		return ^uint64(0)
	}
	return span * factor
}

// lastN keeps the n most recent messages added, in a ring.
type lastN struct {
	n    int
	buf  []Message
	head int // oldest message once the ring is full
}

func newLastN(n int) *lastN { return &lastN{n: n, buf: make([]Message, 0, min(n, 1024))} }

func (l *lastN) add(m Message) {
	if len(l.buf) < l.n {
		l.buf = append(l.buf, m)
		return
	}
	l.buf[l.head] = m
	l.head = (l.head + 1) % l.n
}

func (l *lastN) len() int { return len(l.buf) }

// ordered returns the messages oldest first.
func (l *lastN) ordered() []Message {
	out := make([]Message, 0, len(l.buf))
	for i := range l.buf {
		out = append(out, l.buf[(l.head+i)%len(l.buf)])
	}
	return out
}
