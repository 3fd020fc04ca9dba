package jetstream

import (
	"errors"
	"testing"
)

func TestPublish(t *testing.T) {
	_, c := inProcess(t)
	ensure(t, c, testStream("PUB", "pub.>"))

	tests := []struct {
		name, subject, header, eventType, data string
		wantSeq                                uint64
		wantErr                                error
	}{
		{"plain", "pub.a", "", "", "one", 1, nil},
		{"with event type", "pub.b", "Sse-Event", "update", "two", 2, nil},
		{"header name is case-sensitive and kept", "pub.c", "X-Kind", "Mixed.Case", "three", 3, nil},
		{"empty payload", "pub.d", "", "", "", 4, nil},
		{"no stream captures the subject", "elsewhere.x", "", "", "lost", 0, ErrNoStream},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stream, seq, err := c.Publish(ctxFor(t), tt.subject, tt.header, tt.eventType, []byte(tt.data))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Publish = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || stream != "PUB" || seq != tt.wantSeq {
				t.Fatalf("Publish = %q, %d, %v; want PUB, %d", stream, seq, err, tt.wantSeq)
			}
			var got Message
			err = c.Replay(ctxFor(t), ReplayRequest{Stream: "PUB", After: seq - 1, Upto: seq, EventHeader: tt.header}, func(batch []Message) error {
				got = batch[len(batch)-1]
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if got.Seq != seq || got.Subject != tt.subject || got.EventType != tt.eventType || string(got.Data) != tt.data {
				t.Fatalf("read back %+v, want seq %d %s %q %q", got, seq, tt.subject, tt.eventType, tt.data)
			}
		})
	}
	if _, _, err := c.Publish(ctxFor(t), "pub.e", "", "typed", nil); err == nil {
		t.Fatal("an event type without a header name was accepted")
	}
}
