package sseclient

import (
	"bytes"
	"strconv"
)

// Handler receives every event the parser dispatches. The slices are
// only valid during the call: the parser reuses its buffers.
type Handler interface {
	OnEvent(id, typ, data []byte)
}

// parser is a push-style WHATWG event-stream parser. The client feeds it the
// body bytes as they arrive; complete lines are processed straight out of the
// caller's slice, and only a line split across two reads is copied.
type Parser struct {
	handler Handler

	line   []byte // partial line carried over to the next feed
	data   []byte // data buffer: every data value followed by LF
	evType []byte // event type buffer
	idBuf  []byte // last event ID buffer: set by each id field
	lastID []byte // last event ID string: idBuf as of the last dispatch; sent on reconnect
	retry  int64  // last valid retry field in ms, -1 when none was seen
	// streamRetry is the last valid retry field of the current stream, -1 when it sent none (a turned-away
	// answer's retry is the delay the client waits before it comes back).
	streamRetry int64

	comments int64
	started  bool // first line seen (the BOM is only stripped there)
	afterCR  bool // previous byte was CR: a following LF belongs to the same line end
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func NewParser(h Handler) *Parser {
	return &Parser{handler: h, retry: -1, streamRetry: -1}
}

// LastID is the last event ID seen, sent back as Last-Event-ID. It is only
// valid until the next Feed.
//
// As in EventSource, an id takes effect only when its event is dispatched (at
// the blank line): a stream cut between an event's id and its end must not
// move the client past an event it never got.
func (p *Parser) LastID() []byte { return p.lastID }

// Retry is the last valid retry field in milliseconds, -1 when none was seen.
func (p *Parser) Retry() int64 { return p.retry }

// StreamRetry is the last valid retry field of the current stream (since Reset) in milliseconds, -1 when it
// sent none.
func (p *Parser) StreamRetry() int64 { return p.streamRetry }

// Comments counts the comment lines seen (heartbeats).
func (p *Parser) Comments() int64 { return p.comments }

// Reset prepares the parser for a new stream on a new connection. The last
// event ID is kept: it is what the client sends back as Last-Event-ID.
func (p *Parser) Reset() {
	p.line = p.line[:0]
	p.data = p.data[:0]
	p.evType = p.evType[:0]
	p.started = false
	p.afterCR = false
	p.idBuf = append(p.idBuf[:0], p.lastID...) // an id of an event cut short is forgotten
	p.streamRetry = -1
}

// Feed processes the next bytes of the stream. Line ends are found with
// bytes.IndexByte (vectorised); the position of the next CR is remembered so
// a stream without CRs is scanned for them once per feed, not once per line.
func (p *Parser) Feed(b []byte) {
	pos, cr := 0, -2 // cr: index of the next CR at or after pos; -1 none; -2 unknown
	for pos < len(b) {
		if p.afterCR {
			p.afterCR = false
			if b[pos] == '\n' {
				pos++
				continue
			}
		}
		if cr != -1 && cr < pos {
			if cr = bytes.IndexByte(b[pos:], '\r'); cr >= 0 {
				cr += pos
			}
		}
		end := bytes.IndexByte(b[pos:], '\n')
		if end >= 0 {
			end += pos
		}
		if cr >= 0 && (end < 0 || cr < end) {
			end = cr
		}
		if end < 0 {
			p.line = append(p.line, b[pos:]...)
			return
		}
		line := b[pos:end]
		if len(p.line) > 0 {
			p.line = append(p.line, line...)
			line = p.line
		}
		p.afterCR = b[end] == '\r'
		pos = end + 1
		p.processLine(line)
		p.line = p.line[:0]
	}
}

func (p *Parser) processLine(line []byte) {
	if !p.started {
		p.started = true
		line = bytes.TrimPrefix(line, utf8BOM)
	}
	if len(line) == 0 {
		p.dispatch()
		return
	}
	if line[0] == ':' {
		p.comments++
		return
	}
	field, value := line, []byte(nil)
	if colon := bytes.IndexByte(line, ':'); colon >= 0 {
		field, value = line[:colon], line[colon+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		p.evType = append(p.evType[:0], value...)
	case "data":
		p.data = append(p.data, value...)
		p.data = append(p.data, '\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.idBuf = append(p.idBuf[:0], value...)
		}
	case "retry":
		if allDigits(value) {
			if ms, err := strconv.ParseInt(string(value), 10, 64); err == nil {
				p.retry, p.streamRetry = ms, ms
			}
		}
	}
}

var defaultEventType = []byte("message")

func (p *Parser) dispatch() {
	p.lastID = append(p.lastID[:0], p.idBuf...)
	if len(p.data) == 0 {
		p.evType = p.evType[:0]
		return
	}
	typ := p.evType
	if len(typ) == 0 {
		typ = defaultEventType
	}
	p.handler.OnEvent(p.lastID, typ, p.data[:len(p.data)-1])
	p.data = p.data[:0]
	p.evType = p.evType[:0]
}

func allDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
