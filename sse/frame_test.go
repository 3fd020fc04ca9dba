package sse

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

var appendEventCases = []struct {
	name      string
	id, event string
	data      string
	want      string
}{
	{"plain", "e-1", "", "hello", "id: e-1\ndata: hello\n\n"},
	{"no id", "", "", "hello", "data: hello\n\n"},
	{"event type", "e-2", "update", "{}", "id: e-2\nevent: update\ndata: {}\n\n"},
	{"empty data dispatches", "", "", "", "data: \n\n"},
	{"LF split", "", "", "a\nb", "data: a\ndata: b\n\n"},
	{"CRLF split", "", "", "a\r\nb", "data: a\ndata: b\n\n"},
	{"CR split", "", "", "a\rb", "data: a\ndata: b\n\n"},
	{"trailing LF", "", "", "a\n", "data: a\ndata: \n\n"},
	{"lone CR at end", "", "", "a\r", "data: a\ndata: \n\n"},
	{"CRLF at end", "", "", "a\r\n", "data: a\ndata: \n\n"},
	{"only LF", "", "", "\n", "data: \ndata: \n\n"},
	{"CR CR LF", "", "", "\r\r\n", "data: \ndata: \ndata: \n\n"},
	{"LF CR is two breaks", "", "", "a\n\rb", "data: a\ndata: \ndata: b\n\n"},
	{"mixed breaks", "", "", "a\r\n\rb\nc\rd", "data: a\ndata: \ndata: b\ndata: c\ndata: d\n\n"},
	{"leading space kept", "", "", " x", "data:  x\n\n"},
	{"colon in data", "", "", "a: b", "data: a: b\n\n"},
	{"looks like a field", "", "", "x\nid: evil\n\nevent: y", "data: x\ndata: id: evil\ndata: \ndata: event: y\n\n"},
	{"unicode", "e-3", "ünï", "héllo ✓ 🙂\n第二", "id: e-3\nevent: ünï\ndata: héllo ✓ 🙂\ndata: 第二\n\n"},
	{"NUL in data kept", "", "", "a\x00b", "data: a\x00b\n\n"},
	{"invalid UTF-8 kept", "", "", "\xff\xfe", "data: \xff\xfe\n\n"},
	{"NUL in id dropped", "e\x00-1", "", "x", "id: e-1\ndata: x\n\n"},
	{"CR LF in id dropped", "e\r\n-1\r", "", "x", "id: e-1\ndata: x\n\n"},
	{"id of breakers only omitted", "\r\n\x00", "", "x", "data: x\n\n"},
	{"LF in event dropped", "", "up\ndate", "x", "event: update\ndata: x\n\n"},
	{"event of breakers only omitted", "", "\n", "x", "data: x\n\n"},
	{"invalid UTF-8 in id kept", "\xee-1", "\xff", "x", "id: \xee-1\nevent: \xff\ndata: x\n\n"},
	{"leading space in id kept", " e-1", "", "x", "id:  e-1\ndata: x\n\n"},
}

func TestAppendEvent(t *testing.T) {
	for _, tc := range appendEventCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte(": keep\n\n")
			got := AppendEvent(bytes.Clone(prefix), tc.id, tc.event, []byte(tc.data))
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("dst prefix lost: %q", got)
			}
			if got := string(got[len(prefix):]); got != tc.want {
				t.Fatalf("AppendEvent(%q, %q, %q)\n got %q\nwant %q", tc.id, tc.event, tc.data, got, tc.want)
			}
			checkParsesAs(t, got, tc.id, tc.event, tc.data)
		})
	}
}

// checkParsesAs parses frame, sent twice in a row, as a browser would and
// compares it with what the arguments of AppendEvent promise.
func checkParsesAs(t *testing.T, frame []byte, id, event, data string) {
	t.Helper()
	p := newSSEParser()
	p.feed(string(frame))
	p.feed(string(frame))
	if p.pending() {
		t.Fatalf("frame %q leaves an unfinished event", frame)
	}
	wantType := withoutBreakers(event)
	if wantType == "" {
		wantType = "message"
	}
	want := sseEvent{typ: wantType, data: browserData(data), lastID: withoutBreakers(id)}
	if len(p.events) != 2 || p.events[0] != want || p.events[1] != want {
		t.Fatalf("frame %q parsed as %+v, want 2 x %+v", frame, p.events, want)
	}
}

func TestAppendComment(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"", ": \n\n"},
		{"ok", ": ok\n\n"},
		{"a\nb", ": a\n: b\n\n"},
		{"a\r\nb", ": a\n: b\n\n"},
		{"a\rb\r", ": a\n: b\n: \n\n"},
		{"x\n\ndata: evil", ": x\n: \n: data: evil\n\n"},
	} {
		got := string(AppendComment([]byte("z"), tc.text))
		if got != "z"+tc.want {
			t.Errorf("AppendComment(%q) = %q, want %q", tc.text, got[1:], tc.want)
		}
		p := newSSEParser()
		p.feed(got[1:] + "data: after\n\n")
		if len(p.events) != 1 || p.events[0].data != "after" || p.pending() {
			t.Errorf("comment %q disturbed framing: %+v", tc.text, p.events)
		}
	}
}

func TestAppendRetry(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "retry: 3000\n\n"},
		{1500 * time.Microsecond, "retry: 1\n\n"},
		{0, "retry: 0\n\n"},
		{-time.Second, "retry: 0\n\n"},
	} {
		got := string(AppendRetry(nil, tc.d))
		if got != tc.want {
			t.Errorf("AppendRetry(%v) = %q, want %q", tc.d, got, tc.want)
		}
		p := newSSEParser()
		p.feed(got)
		if p.retry < 0 || len(p.events) != 0 || p.pending() {
			t.Errorf("AppendRetry(%v): browser would ignore or misread %q", tc.d, got)
		}
	}
}

func FuzzAppendEvent(f *testing.F) {
	for _, tc := range appendEventCases {
		f.Add(tc.id, tc.event, []byte(tc.data))
	}
	f.Add("", "", []byte(strings.Repeat("\r\n\r", 10)))
	f.Fuzz(func(t *testing.T, id, event string, data []byte) {
		frame := AppendEvent(nil, id, event, data)
		checkParsesAs(t, frame, id, event, string(data))
	})
}
