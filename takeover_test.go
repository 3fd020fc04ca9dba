package caddysse

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// takenOver reads caddy_sse_taken_over_connections of stream from the admin endpoint (0 when absent).
func takenOver(t *testing.T, stream string) int {
	t.Helper()
	resp, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	prefix := fmt.Sprintf(`caddy_sse_taken_over_connections{stream=%q} `, stream)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.ParseFloat(v, 64)
			return int(n)
		}
	}
	return 0
}

// Which streams are taken over from Caddy's HTTP server (http1_takeover): plaintext HTTP/1.1 by default;
// not when the response is encoded, not over HTTP/2, not with the option off. Every one delivers the same
// events, and every one gives its connection slot back when the client leaves.
func TestHTTP1Takeover(t *testing.T) {
	loadSite(t, `route /plain {
		sse takeover.> {
			stream TAKEOVER
		}
	}
	route /encoded {
		encode gzip
		sse takeover.> {
			stream TAKEOVER
		}
	}
	route /off {
		sse takeover.> {
			stream TAKEOVER
			http1_takeover off
		}
	}`)
	js := embeddedJS(t)
	var h2only http.Protocols
	h2only.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &h2only}}
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}

	cases := []struct {
		name   string
		client *http.Client
		path   string
		taken  bool
	}{
		{"HTTP/1.1", plain, "/plain", true},
		{"HTTP/1.1 asking for gzip", http.DefaultClient, "/encoded", false},
		{"HTTP/1.1 not asking for gzip", plain, "/encoded", true},
		{"HTTP/2 cleartext", h2c, "/plain", false},
		{"http1_takeover off", plain, "/off", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := openStreamWith(t, tc.client, baseURL+tc.path, nil)
			waitSubscribed(t, "TAKEOVER", 1)
			want := 0
			if tc.taken {
				want = 1
			}
			eventually(t, fmt.Sprintf("%d taken over", want), func() bool { return takenOver(t, "TAKEOVER") == want })
			for n := range 3 {
				data := fmt.Sprintf("case %d event %d", i, n)
				publish(t, js, "takeover.a", "", data)
				s.expectData(data)
			}
			s.close()
			eventually(t, "stream released", func() bool {
				return feedSubscriptions(t, "TAKEOVER") == 0 && takenOver(t, "TAKEOVER") == 0
			})
		})
	}
}

// Caddy's idle-timeout writer arms a write deadline on the connection after the stream was taken over (when
// the handler returns, it moves the deadline it had armed). A taken-over stream must outlive that deadline:
// here write_idle is 300ms and the stream stays quiet for longer before each event.
func TestTakenOverStreamOutlivesCaddysDeadline(t *testing.T) {
	loadSiteWith(t, "timeouts {\n\t\t\twrite_idle 300ms\n\t\t}", `sse /idle takeoverdl.> {
		stream TAKEOVERDL
		heartbeat 10s
	}`)
	js := embeddedJS(t)
	plain := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	s := openStreamWith(t, plain, baseURL+"/idle", nil)
	waitSubscribed(t, "TAKEOVERDL", 1)
	eventually(t, "taken over", func() bool { return takenOver(t, "TAKEOVERDL") == 1 })
	for n := range 2 {
		s.expectQuiet(time.Second)
		data := fmt.Sprintf("after a quiet second %d", n)
		publish(t, js, "takeoverdl.a", "", data)
		s.expectData(data)
	}
}
