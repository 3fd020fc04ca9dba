package sse

import "strings"

// sseEvent is what a browser's EventSource would hand to a listener.
type sseEvent struct {
	typ, data, lastID string
}

// sseParser is a small implementation of the WHATWG "event stream
// interpretation" over bytes, used to check that our frames mean what we
// intend. It skips the UTF-8 decoding step: browsers decode before parsing,
// and no multi-byte sequence contains CR, LF or ':', so line and field
// boundaries are the same.
type sseParser struct {
	events  []sseEvent
	data    strings.Builder
	typ     string
	lastID  string
	retry   int // -1 until a valid retry field
	partial string
}

func newSSEParser() *sseParser { return &sseParser{retry: -1} }

// feed parses a complete buffer. A CR is a line end even at the very end
// of the buffer: a following LF would then be a new empty line, which is why
// our encoder never writes a bare CR.
func (p *sseParser) feed(b string) {
	b = p.partial + b
	p.partial = ""
	for len(b) > 0 {
		i := strings.IndexAny(b, "\r\n")
		if i < 0 {
			p.partial = b // incomplete line: discarded at end of stream
			return
		}
		p.line(b[:i])
		if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
			i++
		}
		b = b[i+1:]
	}
}

func (p *sseParser) line(l string) {
	switch {
	case l == "":
		p.dispatch()
		return
	case l[0] == ':': // comment
		return
	}
	field, value, found := strings.Cut(l, ":")
	if found {
		value = strings.TrimPrefix(value, " ")
	}
	switch field {
	case "event":
		p.typ = value
	case "data":
		p.data.WriteString(value)
		p.data.WriteByte('\n')
	case "id":
		if !strings.Contains(value, "\x00") {
			p.lastID = value
		}
	case "retry":
		if value != "" && len(value) < 10 && strings.Trim(value, "0123456789") == "" {
			p.retry = atoiDigits(value)
		}
	}
}

func (p *sseParser) dispatch() {
	data := p.data.String()
	typ := p.typ
	p.data.Reset()
	p.typ = ""
	if data == "" {
		return
	}
	data = strings.TrimSuffix(data, "\n")
	if typ == "" {
		typ = "message"
	}
	p.events = append(p.events, sseEvent{typ: typ, data: data, lastID: p.lastID})
}

// pending reports whether anything was left undispatched.
func (p *sseParser) pending() bool {
	return p.partial != "" || p.data.Len() > 0 || p.typ != ""
}

func atoiDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// browserData is what a browser's event.data holds for payload: every line
// break becomes LF.
func browserData(payload string) string {
	payload = strings.ReplaceAll(payload, "\r\n", "\n")
	return strings.ReplaceAll(payload, "\r", "\n")
}

// withoutBreakers drops CR, LF and NUL, as AppendEvent does for id and event.
// It works on bytes: invalid UTF-8 must come through unchanged.
func withoutBreakers(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\r' && c != '\n' && c != 0 {
			out = append(out, c)
		}
	}
	return string(out)
}
