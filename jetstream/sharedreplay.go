package jetstream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddy-sse/caddy-sse/subject"
	"go.uber.org/zap"
)

// Concurrent replays of the same range share one read. A node restart or a reconnect storm sends many clients
// back with the same Last-Event-ID; reading JetStream once for all of them, instead of once per client (a
// consumer each: in a cluster, a Raft proposal each), keeps JetStream's work bounded by the number of distinct
// cursors, not clients.
//
// Requests share when they ask for the same stream, incarnation, filters, event header, limit and After: then
// every decision the read makes (too many, history gone, beyond the end) is the one a read of their own would
// make. The first request starts the read on its own goroutine, so it goes on when that client leaves; the
// others follow it from memory at their own pace. A follower whose Upto is beyond where the read stopped reads
// the rest on its own.

const (
	// sharedReplayLinger keeps a finished read for clients that come back a little later.
	sharedReplayLinger = 5 * time.Second
	// sharedRetries: how many times a client follows a new read after the one it followed failed (not with an
	// answer about the range), before its replay fails; sharedRetryPause is the wait before each.
	sharedRetries    = 3
	sharedRetryPause = 500 * time.Millisecond
	// sharedReplayMaxBytes caps one shared read's memory: it stops there, and its clients read the rest of
	// their range on their own, paced by their own writes.
	sharedReplayMaxBytes = 64 << 20
)

type sharedReplays struct {
	mu    sync.Mutex
	reads map[string]*sharedRead
}

// sharedRead is one read of (After, upto] that several clients follow.
type sharedRead struct {
	key string

	mu       sync.Mutex
	upto     uint64 // the highest Upto of the clients following it; raised while it reads
	msgs     []Message
	bytes    int
	done     bool
	reached  uint64 // once done without error: every matching event up to here is in msgs
	err      error
	errAfter uint64        // the error concerns what follows this sequence
	wake     chan struct{} // closed and replaced whenever msgs grows or the read ends
	clients  int
	joinable bool
}

func replayKey(req ReplayRequest) string {
	filters := slices.Clone(subject.Minimal(req.Filters))
	slices.Sort(filters)
	return fmt.Sprintf("%s\x00%s\x00%s\x00%s\x00%d\x00%d", req.Stream, req.Epoch, strings.Join(filters, "\x01"),
		req.EventHeader, req.Limit, req.After)
}

// sharedReplay follows, or starts, the shared read for req.
func (c *Conn) sharedReplay(ctx context.Context, req ReplayRequest, fn func([]Message) error) error {
	return c.shareRange(ctx, req, fn, sharedRetries)
}

// shareRange joins the read for req; retries is how many failed reads it may still follow a new one after.
func (c *Conn) shareRange(ctx context.Context, req ReplayRequest, fn func([]Message) error, retries int) error {
	if req.Upto <= req.After {
		return c.privateReplay(ctx, req, fn) // nothing to read: only the range checks, no consumer
	}
	s := c.joinRead(req)
	defer c.leaveRead(s)
	return c.follow(ctx, req, s, fn, retries)
}

// follow hands a client the events of s in its range, then whatever it wants beyond where s stopped.
func (c *Conn) follow(ctx context.Context, req ReplayRequest, s *sharedRead, fn func([]Message) error, retries int) error {
	pos := 0
	for {
		s.mu.Lock()
		for pos < len(s.msgs) || s.done {
			batch := s.msgs[pos:]
			if end, _ := slices.BinarySearchFunc(batch, req.Upto+1, func(m Message, seq uint64) int {
				return cmp.Compare(m.Seq, seq)
			}); end < len(batch) {
				batch = batch[:end] // the read is past this client's range: what follows does not concern it
				s.mu.Unlock()
				if err := sendBatches(batch, fn); err != nil {
					return err
				}
				return s.outcome(req)
			}
			pos = len(s.msgs)
			done := s.done
			s.mu.Unlock()
			if err := sendBatches(batch, fn); err != nil {
				return err
			}
			if done {
				if err := s.outcome(req); err != nil {
					return c.retryAfter(ctx, req, s, fn, err, retries)
				}
				return c.readRest(ctx, req, s, fn, retries)
			}
			s.mu.Lock()
		}
		wake := s.wake
		s.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryAfter follows a new read from where the failed read s stopped, once the client has every event s
// got. A read that fails for a reason of its own (a JetStream request timing out on a saturated node) would
// otherwise end every stream following it at once; the answers about the range itself (history gone, too
// many) are every client's and are not retried.
func (c *Conn) retryAfter(ctx context.Context, req ReplayRequest, s *sharedRead, fn func([]Message) error, err error, retries int) error {
	if retries <= 0 || isResetError(err) || ctx.Err() != nil {
		return err
	}
	s.mu.Lock()
	rest := req
	if n := len(s.msgs); n > 0 {
		// The events s got are contiguous up to its last one (every read proves its own continuity), and the
		// range's checks (beyond the end, the limit) were made when its consumer opened.
		rest.After, rest.Limit = s.msgs[n-1].Seq, 0
	}
	s.mu.Unlock()
	c.log.Debug("shared replay failed; following a new read", zap.String("stream", req.Stream),
		zap.Uint64("after", rest.After), zap.Error(err))
	select {
	case <-time.After(sharedRetryPause):
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.shareRange(ctx, rest, fn, retries-1) // the other clients of s come to the same new read
}

// outcome is the read's error as it concerns a client that wants up to req.Upto: none when the error is about
// what follows its range.
func (s *sharedRead) outcome(req ReplayRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// An error before any event concerns every client (they share After); a later one those whose range
	// goes past the events before it.
	if s.err != nil && (len(s.msgs) == 0 || s.errAfter < req.Upto) {
		return s.err
	}
	return nil
}

// readRest reads what a client wants beyond where the shared read stopped.
func (c *Conn) readRest(ctx context.Context, req ReplayRequest, s *sharedRead, fn func([]Message) error, retries int) error {
	s.mu.Lock()
	reached, failed := s.reached, s.err != nil
	s.mu.Unlock()
	if failed || reached >= req.Upto {
		return nil
	}
	rest := req
	rest.After, rest.Limit = reached, 0         // the limit was judged on the whole range already
	return c.shareRange(ctx, rest, fn, retries) // late clients with the same rest share that read too
}

// isResetError: the read's answer about the range itself, the same for every client of the same range.
func isResetError(err error) bool {
	for _, e := range []error{ErrHistoryGone, ErrTooMany, ErrBeyondEnd, ErrStreamChanged, ErrNoStream} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func sendBatches(msgs []Message, fn func([]Message) error) error {
	for len(msgs) > 0 {
		n := min(len(msgs), replayBatch)
		if err := fn(msgs[:n:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// joinRead returns the read req can follow, starting one if there is none.
func (c *Conn) joinRead(req ReplayRequest) *sharedRead {
	key := replayKey(req)
	c.shared.mu.Lock()
	defer c.shared.mu.Unlock()
	if s := c.shared.reads[key]; s != nil {
		s.mu.Lock()
		ok := s.joinable
		if ok {
			s.clients++
			s.upto = max(s.upto, req.Upto)
		}
		s.mu.Unlock()
		if ok {
			return s
		}
	}
	s := &sharedRead{key: key, upto: req.Upto, wake: make(chan struct{}), clients: 1, joinable: true}
	c.shared.reads[key] = s
	go c.runSharedRead(s, req)
	return s
}

func (c *Conn) leaveRead(s *sharedRead) {
	s.mu.Lock()
	s.clients--
	s.mu.Unlock()
}

// runSharedRead reads for every client of s. It stops early when no client follows any more.
func (c *Conn) runSharedRead(s *sharedRead, req ReplayRequest) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &rangeReader{conn: c, req: req, next: req.After + 1, strictHead: true}
	var err error
	upto := uint64(0)
	for {
		s.mu.Lock()
		r.req.Upto = s.upto // clients that joined later may want more
		upto = s.upto
		alone := s.clients == 0
		if alone {
			s.joinable = false // nobody may join a read that is about to stop for want of clients
		}
		s.mu.Unlock()
		if alone {
			err = context.Canceled
			break
		}
		var batch []Message
		var done bool
		batch, done, err = r.readBatch(ctx)
		prepare(req.Prepare, batch) // once for every client, outside the lock they read under
		full := s.add(batch, req.Prepare != nil)
		if err != nil || done {
			break
		}
		if full {
			upto = r.next - 1 // complete up to here; the clients read on from it
			break
		}
	}
	r.close()
	s.finish(err, req.After, upto)
	time.AfterFunc(sharedReplayLinger, func() { c.forgetRead(s) })
}

// add appends a batch for the clients; full once the read holds as much memory as it may. A prepared event
// (an encoded frame) is counted as large again.
func (s *sharedRead) add(batch []Message, prepared bool) (full bool) {
	if len(batch) == 0 {
		return false
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, batch...)
	for _, m := range batch {
		n := len(m.Data) + len(m.Subject) + len(m.EventType)
		if prepared {
			n *= 2
		}
		s.bytes += n
	}
	full = s.bytes > sharedReplayMaxBytes
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
	return full
}

func (s *sharedRead) finish(err error, after, upto uint64) {
	s.mu.Lock()
	s.done, s.err = true, err
	switch {
	case err == nil:
		s.reached = upto
	case len(s.msgs) > 0:
		s.errAfter = s.msgs[len(s.msgs)-1].Seq
	default:
		s.errAfter = after // before anything: concerns every client (they share After)
	}
	if err != nil && !isResetError(err) {
		s.joinable = false // a failure of this read (NATS down, a slow server) is not every later client's answer
	}
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

// forgetRead drops a finished read once it has lingered; clients still following it keep their reference.
func (c *Conn) forgetRead(s *sharedRead) {
	c.shared.mu.Lock()
	if c.shared.reads[s.key] == s {
		delete(c.shared.reads, s.key)
	}
	c.shared.mu.Unlock()
}
