package hub

import (
	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/sse"
)

// Event is one dispatched message. Frame is the complete SSE frame, id
// included, encoded once and shared by every client and by the history:
// nobody may modify it.
type Event struct {
	Seq     uint64
	Subject string
	Frame   []byte
}

// newEvent encodes the frame for seq in epoch into a buffer sized up front,
// so an event costs exactly two allocations (Event and Frame) however many
// clients receive it.
func newEvent(epoch string, seq uint64, subject, eventType string, data []byte) *Event {
	size := len("id: ") + eventid.MaxLen(epoch) + len("\n") +
		len("event: ") + len(eventType) + len("\n") +
		sse.MaxDataLines(data)*len("data: \n") + len(data) + len("\n")
	frame := make([]byte, 0, size)
	frame = append(frame, "id: "...)
	frame = eventid.Append(frame, epoch, seq) // epochs come from eventid.Epoch: no byte breaks the framing
	frame = append(frame, '\n')
	frame = sse.AppendBody(frame, eventType, data)
	return &Event{Seq: seq, Subject: subject, Frame: frame}
}
