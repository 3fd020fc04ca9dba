package sse

import (
	"bytes"
	"strconv"
	"time"
)

// The encoders below follow the WHATWG event-stream parser: a line ends at
// CRLF, LF or CR; "field: value" loses exactly one space after the colon; a
// blank line dispatches the event. Everything we write ends lines with LF.

// AppendEvent appends one complete SSE event frame to dst.
//
// The "id" and "event" lines are written only when the value is non-empty
// after CR, LF and NUL are removed: those bytes would end the line early, and
// a browser ignores an id containing NUL. An id line with an empty value would
// reset the browser's last event id, so it is never written.
//
// data is split on CRLF, CR and LF into one "data: " line each, so the browser
// sees the payload with every line break as LF. An empty payload still gets a
// "data: " line: without one the browser would not dispatch the event at all.
// The payload is otherwise copied unchanged (no UTF-8 checks, no escaping).
func AppendEvent(dst []byte, id, event string, data []byte) []byte {
	if hasFieldText(id) {
		dst = append(dst, "id: "...)
		dst = appendFieldText(dst, id)
		dst = append(dst, '\n')
	}
	return AppendBody(dst, event, data)
}

// AppendBody writes everything after the id line: it is shared by
// AppendEvent and the hub's frame encoder, which writes the id in place.
func AppendBody(dst []byte, event string, data []byte) []byte {
	if hasFieldText(event) {
		dst = append(dst, "event: "...)
		dst = appendFieldText(dst, event)
		dst = append(dst, '\n')
	}
	dst = appendDataLines(dst, data)
	return append(dst, '\n')
}

// appendDataLines writes data as "data: " lines. It finds CR and LF with
// bytes.IndexByte (vectorised) and only searches again for a byte once the
// scan has passed its last known position, so it stays linear however the
// line breaks are mixed.
func appendDataLines(dst, data []byte) []byte {
	lf := bytes.IndexByte(data, '\n')
	cr := bytes.IndexByte(data, '\r')
	start := 0
	for {
		end := lf
		if cr >= 0 && (end < 0 || cr < end) {
			end = cr
		}
		if end < 0 {
			dst = append(dst, "data: "...)
			dst = append(dst, data[start:]...)
			return append(dst, '\n')
		}
		dst = append(dst, "data: "...)
		dst = append(dst, data[start:end]...)
		dst = append(dst, '\n')
		start = end + 1
		if end == cr && lf == start { // CRLF is one break
			start++
		}
		if lf >= 0 && lf < start {
			lf = indexFrom(data, start, '\n')
		}
		if cr >= 0 && cr < start {
			cr = indexFrom(data, start, '\r')
		}
	}
}

func indexFrom(b []byte, from int, c byte) int {
	i := bytes.IndexByte(b[from:], c)
	if i < 0 {
		return -1
	}
	return from + i
}

// maxDataLines bounds the "data: " lines appendDataLines writes, to size a
// buffer in one allocation. A CRLF counts twice, which only overestimates.
func MaxDataLines(data []byte) int {
	return bytes.Count(data, []byte{'\n'}) + bytes.Count(data, []byte{'\r'}) + 1
}

// AppendComment appends a comment block. Comments keep idle connections
// alive and carry notes for humans; the browser ignores them. Each line of
// text becomes its own ": " line, so a line break in text can never start a
// field.
func AppendComment(dst []byte, text string) []byte {
	for {
		i := indexLineBreak(text)
		dst = append(dst, ": "...)
		if i < 0 {
			dst = append(dst, text...)
			return append(dst, '\n', '\n')
		}
		dst = append(dst, text[:i]...)
		dst = append(dst, '\n')
		if text[i] == '\r' && i+1 < len(text) && text[i+1] == '\n' {
			i++
		}
		text = text[i+1:]
	}
}

// AppendRetry appends a "retry:" field telling the browser how long to wait
// before reconnecting. The value must be ASCII digits only, so negative
// durations become 0 and sub-millisecond parts are dropped.
func AppendRetry(dst []byte, d time.Duration) []byte {
	ms := max(d.Milliseconds(), 0)
	dst = append(dst, "retry: "...)
	dst = strconv.AppendInt(dst, ms, 10)
	return append(dst, '\n', '\n')
}

func isFieldBreaker(c byte) bool { return c == '\r' || c == '\n' || c == 0 }

// hasFieldText reports whether s has something left once CR, LF and NUL are
// dropped.
func hasFieldText(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFieldBreaker(s[i]) {
			return true
		}
	}
	return false
}

// appendFieldText appends s without CR, LF and NUL.
func appendFieldText(dst []byte, s string) []byte {
	for {
		i := indexFieldBreaker(s)
		if i < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:i]...)
		s = s[i+1:]
	}
}

func indexFieldBreaker(s string) int {
	for i := 0; i < len(s); i++ {
		if isFieldBreaker(s[i]) {
			return i
		}
	}
	return -1
}

func indexLineBreak(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return i
		}
	}
	return -1
}
