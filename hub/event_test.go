package hub

import (
	"bytes"
	"testing"

	"github.com/caddy-sse/caddy-sse/sse"
)

// The frame the hub encodes once per event must be what sse.AppendEvent writes, in a buffer sized up front.
func TestEventFrameMatchesAppendEvent(t *testing.T) {
	for _, tc := range []struct{ event, data string }{
		{"", "hello"}, {"update", "{}"}, {"", ""}, {"", "a\r\n\rb\nc\rd"}, {"up\ndate", "x"}, {"ünï", "héllo\n第二"},
	} {
		e := newEvent("k3x9", 42, "a.b", tc.event, []byte(tc.data))
		want := sse.AppendEvent(nil, "k3x9-42", tc.event, []byte(tc.data))
		if !bytes.Equal(e.Frame, want) {
			t.Errorf("newEvent frame %q, want %q", e.Frame, want)
		}
		if cap(e.Frame)-len(e.Frame) > 64+6*sse.MaxDataLines([]byte(tc.data)) {
			t.Errorf("frame capacity %d badly sized for %d bytes", cap(e.Frame), len(e.Frame))
		}
	}
}

func FuzzEventFrame(f *testing.F) {
	f.Add("update", []byte("a\nb"))
	f.Fuzz(func(t *testing.T, event string, data []byte) {
		e := newEvent("ep", 7, "s", event, data)
		if want := sse.AppendEvent(nil, "ep-7", event, data); !bytes.Equal(e.Frame, want) {
			t.Fatalf("newEvent frame %q, want %q", e.Frame, want)
		}
	})
}
