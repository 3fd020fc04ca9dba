package jetstream

import (
	"context"
	"sync"
	"testing"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Throwaway: does the library's ordered consumer carry on silently onto a
// deleted and recreated stream?
func TestProbeLibraryOrderedConsumer(t *testing.T) {
	_, c := inProcess(t)
	cfg := testStream("OC", "oc.>")
	ensure(t, c, cfg)
	for range 3 {
		publish(t, c, "oc.x", "", "old")
	}
	oc, err := c.js.OrderedConsumer(ctxFor(t), "OC", natsjs.OrderedConsumerConfig{DeliverPolicy: natsjs.DeliverByStartSequencePolicy, OptStartSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []string
	var errs []string
	cc, err := oc.Consume(func(m natsjs.Msg) {
		md, _ := m.Metadata()
		mu.Lock()
		got = append(got, string(m.Data())+"@"+time.Now().Format("05.000")+"#"+itoa(md.Sequence.Stream))
		mu.Unlock()
	}, natsjs.ConsumeErrHandler(func(_ natsjs.ConsumeContext, err error) {
		mu.Lock()
		errs = append(errs, err.Error())
		mu.Unlock()
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Stop()
	time.Sleep(500 * time.Millisecond)
	c.js.DeleteStream(context.Background(), "OC")
	ensure(t, c, cfg)
	for range 6 {
		publish(t, c, "oc.x", "", "new")
	}
	time.Sleep(15 * time.Second)
	mu.Lock()
	t.Logf("got %v errs %v", got, errs)
	mu.Unlock()
}

func itoa(u uint64) string { return time.Duration(u).String() }
