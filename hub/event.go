package hub

import "strconv"

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
	size := len("id: ") + len(epoch) + len("-") + maxSeqLen + len("\n") +
		len("event: ") + len(eventType) + len("\n") +
		maxDataLines(data)*len("data: \n") + len(data) + len("\n")
	frame := make([]byte, 0, size)
	frame = append(frame, "id: "...)
	frame = appendFieldText(frame, epoch) // epochs come from EpochFromTime; this only keeps framing safe
	frame = append(frame, '-')
	frame = strconv.AppendUint(frame, seq, 10)
	frame = append(frame, '\n')
	frame = appendEventBody(frame, eventType, data)
	return &Event{Seq: seq, Subject: subject, Frame: frame}
}
