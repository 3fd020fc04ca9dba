package session

import (
	"runtime"
	"sync"

	"github.com/caddy-sse/caddy-sse/hub"
)

// writerPool is the process's small set of goroutines that write to taken-over sessions. A held session is
// queued here whenever it has something to do (events, a heartbeat, its end); a writer drains it into one
// chunk and writes that without blocking, so one pool serves every connection and a stalled client never
// holds a writer (its rest goes to a goroutine of its own, see held.writeRest).
type writerPool struct {
	mu    sync.Mutex
	cond  sync.Cond
	ready []*held // FIFO from head
	head  int
}

// writerBatch is how many held sessions a writer takes per visit to the queue: fewer lock round trips when
// thousands become ready at once, small enough that the other writers get their share.
const writerBatch = 32

var (
	writersOnce sync.Once
	writers     *writerPool
)

// pool returns the writer pool, starting it on first use: one writer per processor, at least two.
func pool() *writerPool {
	writersOnce.Do(func() {
		writers = &writerPool{}
		writers.cond.L = &writers.mu
		for range max(2, runtime.GOMAXPROCS(0)) {
			go writers.run()
		}
	})
	return writers
}

// push queues h; held.schedule makes sure it is queued at most once.
func (p *writerPool) push(h *held) {
	p.mu.Lock()
	p.ready = append(p.ready, h)
	p.mu.Unlock()
	p.cond.Signal()
}

// take waits for ready sessions and moves up to writerBatch of them to dst.
func (p *writerPool) take(dst []*held) []*held {
	p.mu.Lock()
	for p.head == len(p.ready) {
		p.cond.Wait()
	}
	n := min(len(p.ready)-p.head, writerBatch)
	dst = append(dst, p.ready[p.head:p.head+n]...)
	clear(p.ready[p.head : p.head+n])
	p.head += n
	switch {
	case p.head == len(p.ready):
		p.ready, p.head = p.ready[:0], 0
	case p.head > len(p.ready)/2: // keep the slice from creeping forward forever under constant load
		k := copy(p.ready, p.ready[p.head:])
		clear(p.ready[k:])
		p.ready, p.head = p.ready[:k], 0
	}
	more := p.head < len(p.ready)
	p.mu.Unlock()
	if more {
		p.cond.Signal()
	}
	return dst
}

// writerScratch is one writer's reusable memory: sessions share it instead of holding buffers while idle.
type writerScratch struct {
	buf    []byte
	events []*hub.Event
}

func (p *writerPool) run() {
	var batch []*held
	var w writerScratch
	for {
		batch = p.take(batch[:0])
		for _, h := range batch {
			h.serve(&w)
		}
		clear(batch)
	}
}
