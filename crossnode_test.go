package caddysse

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Two Caddy nodes on one NATS: this test process and a real Caddy binary connected to the same server. With
// max_per_key 1 a key has one connection across both: a newer one on either node replaces the older one on
// the other (replace), or is turned away while the other node holds the key (reject).
func TestMaxPerKeyAcrossNodes(t *testing.T) {
	routes := `sse /xn/replace xn.> {
		stream XN
		client_key {query.pc}
		max_per_key 1
	%s}
	sse /xn/reject xn.> {
		stream XN
		client_key {query.pc}
		max_per_key 1 reject
	%s}`
	loadSite(t, fmt.Sprintf(routes, "", ""))
	nats := "nats_url nats://" + embeddedAddr + "\n"
	port, admin := freePort(t), freePort(t)
	startCaddy(t, t.TempDir(), fmt.Sprintf(`{
	admin localhost:%d
	sse {
		listen off
	}
}
http://localhost:%d {
	%s
}
`, admin, port, fmt.Sprintf(routes, nats, nats)))
	other := fmt.Sprintf("http://localhost:%d", port)
	waitServing(t, other+"/")

	t.Run("replace", func(t *testing.T) {
		here := openLive(t, "/xn/replace?pc=tab", "XN", 1)
		there := openStream(t, other+"/xn/replace?pc=tab", nil)
		there.waitOpen()
		if ev := here.next(); ev.Type != "replaced" {
			t.Fatalf("the older connection on this node got %+v, want replaced", ev)
		}
		here.expectEnd()

		// And back: a newer connection here replaces the one on the other node.
		again := openLive(t, "/xn/replace?pc=tab", "XN", 1)
		if ev := there.next(); ev.Type != "replaced" {
			t.Fatalf("the older connection on the other node got %+v, want replaced", ev)
		}
		there.expectEnd()
		again.expectQuiet(200 * time.Millisecond)
	})

	t.Run("reject", func(t *testing.T) {
		holder := openLive(t, "/xn/reject?pc=pc1", "XN", 1)
		// The other node learns that this one holds the key from the subscription this node makes for it;
		// retry until the answer is the turn-away.
		eventually(t, "the other node to turn the second connection away", func() bool {
			resp, err := http.Get(other + "/xn/reject?pc=pc1")
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			if resp.Header.Get("Retry-After") != "" {
				body, _ := io.ReadAll(resp.Body)
				return strings.Contains(string(body), "retry: ")
			}
			return false
		})
		holder.expectQuiet(100 * time.Millisecond)
	})
}
