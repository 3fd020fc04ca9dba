package caddysse

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPublishEndpoint(t *testing.T) {
	loadSite(t, `sse /publish publish.> {
		stream PUBLISH
	}
	sse /publish/pub publish.> {
		stream PUBLISH
		topic_param topic
		publish
	}
	sse /publish/one publish.fixed {
		stream PUBLISH
		publish
	}`)
	s := openLive(t, "/publish", "PUBLISH", 1)

	post := func(url, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(baseURL+url, "application/octet-stream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	payload := "{\"raw\": true}\nsecond line"
	status, body := post("/publish/pub?topic=publish.chat&event=note", payload)
	if status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	var answer publishAnswer
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Subject != "publish.chat" || answer.Stream != "PUBLISH" {
		t.Fatalf("publish answer %s (%v)", body, err)
	}
	ev := s.next()
	if ev.Data != payload || ev.Type != "note" || ev.ID != answer.ID {
		t.Fatalf("streamed %+v, want data %q type note id %s", ev, payload, answer.ID)
	}

	status, _ = post("/publish/one", "fixed")
	if status != 200 {
		t.Fatalf("publish to the only template: %d", status)
	}
	s.expectData("fixed")

	cases := []struct {
		name, url, body string
		want            int
	}{
		{"wildcard subject", "/publish/pub", "x", 400},
		{"wildcard topic", "/publish/pub?topic=publish.*", "x", 400},
		{"topic outside", "/publish/pub?topic=other.x", "x", 403},
		{"event type with newline", "/publish/pub?topic=publish.chat&event=a%0Ab", "x", 400},
		{"body over 1 MiB", "/publish/pub?topic=publish.chat", strings.Repeat("x", maxPublishBytes+1), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := post(tc.url, tc.body); status != tc.want {
				t.Fatalf("status %d (%s), want %d", status, body, tc.want)
			}
		})
	}
	// nothing of the refused requests reached the stream
	status, _ = post("/publish/pub?topic=publish.chat", "after")
	if status != 200 {
		t.Fatal(status)
	}
	s.expectData("after")
}
