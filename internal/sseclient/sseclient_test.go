package sseclient

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"testing"
)

type recorded struct{ id, typ, data string }

type recorder struct{ events []recorded }

func (r *recorder) OnEvent(id, typ, data []byte) {
	r.events = append(r.events, recorded{string(id), string(typ), string(data)})
}

func TestParser(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []recorded
		retry int64
	}{
		{"lf", "id: 1\ndata: a\n\n", []recorded{{"1", "message", "a"}}, -1},
		{"crlf", "id: 1\r\ndata: a\r\n\r\n", []recorded{{"1", "message", "a"}}, -1},
		{"cr", "id: 1\rdata: a\r\r", []recorded{{"1", "message", "a"}}, -1},
		{"bom", "\xEF\xBB\xBFdata: a\n\n", []recorded{{"", "message", "a"}}, -1},
		{"bom only once", "\xEF\xBB\xBFdata: a\n\n\xEF\xBB\xBFdata: b\n\n", []recorded{{"", "message", "a"}}, -1},
		{"multi data", "data: a\ndata:b\ndata\n\n", []recorded{{"", "message", "a\nb\n"}}, -1},
		{"event type", "event: reset\ndata: {}\n\ndata: x\n\n", []recorded{{"", "reset", "{}"}, {"", "message", "x"}}, -1},
		{"comment", ": hello\n\ndata: x\n\n", []recorded{{"", "message", "x"}}, -1},
		{"no data no event", "event: x\nid: 7\n\ndata: y\n\n", []recorded{{"7", "message", "y"}}, -1},
		{"id persists", "id: 5\ndata: a\n\ndata: b\n\n", []recorded{{"5", "message", "a"}, {"5", "message", "b"}}, -1},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []recorded{{"1", "message", "a"}, {"1", "message", "b"}}, -1},
		{"empty id clears", "id: 1\ndata: a\n\nid\ndata: b\n\n", []recorded{{"1", "message", "a"}, {"", "message", "b"}}, -1},
		{"retry", "retry: 1500\n\nretry: 15x\n\n", nil, 1500},
		{"only one space stripped", "data:  a\n\n", []recorded{{"", "message", " a"}}, -1},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []recorded{{"", "message", "a"}}, -1},
		{"unknown field", "foo: bar\ndata: a\n\n", []recorded{{"", "message", "a"}}, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Every split into two feeds must give the same result.
			for cut := 0; cut <= len(tc.in); cut++ {
				rec := &recorder{}
				p := NewParser(rec)
				p.Feed([]byte(tc.in[:cut]))
				p.Feed([]byte(tc.in[cut:]))
				if fmt.Sprint(rec.events) != fmt.Sprint(tc.want) {
					t.Fatalf("cut %d: got %q, want %q", cut, rec.events, tc.want)
				}
				if p.Retry() != tc.retry {
					t.Fatalf("cut %d: retry %d, want %d", cut, p.Retry(), tc.retry)
				}
			}
		})
	}
}

// The id sent back on reconnect is that of the last dispatched event, not of
// one cut short before its blank line.
func TestLastIDOnlyAtDispatch(t *testing.T) {
	p := NewParser(&recorder{})
	p.Feed([]byte("id: 5\ndata: a\n\nid: 6\ndata: b\n"))
	if got := string(p.LastID()); got != "5" {
		t.Fatalf("LastID %q after a cut event, want 5", got)
	}
	p.Reset()
	p.Feed([]byte("data: c\n\n"))
	if got := string(p.LastID()); got != "5" {
		t.Fatalf("LastID %q after reconnect, want 5", got)
	}
	p.Feed([]byte("id: 7\n\n"))
	if got := string(p.LastID()); got != "7" {
		t.Fatalf("LastID %q after an id-only block, want 7", got)
	}
}

func TestChunkedBody(t *testing.T) {
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Node: n1\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"6\r\n: ok\n\n\r\n" + "a;ext=1\r\ndata: hi\n\n\r\n" + "0\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(raw), 64)
	b, err := ReadResponse(br, "X-Node")
	if err != nil {
		t.Fatal(err)
	}
	if b.Header("X-Node") != "n1" || b.Header("Content-Type") != "" {
		t.Fatalf("kept headers: %q", b.kept)
	}
	var got []byte
	for {
		p, err := b.Next()
		got = append(got, p...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if string(got) != ": ok\n\ndata: hi\n\n" {
		t.Fatalf("body %q", got)
	}
	for _, bad := range []string{
		"HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
	} {
		if _, err := ReadResponse(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPayload(t *testing.T) {
	b := AppendPayload(nil, "run1", 42, 7, []byte("xx"))
	run, n, ts, ok := ParsePayload(b)
	if !ok || string(run) != "run1" || n != 42 || ts != 7 {
		t.Fatalf("%s: %q %d %d %v", b, run, n, ts, ok)
	}
}
