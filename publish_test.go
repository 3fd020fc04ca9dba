package caddysse

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestPublishEndpoint(t *testing.T) {
	loadSite(t, `sse /t11 t11.> {
		stream T11
	}
	sse /t11/pub t11.> {
		stream T11
		topic_param topic
		publish
	}
	sse /t11/one t11.fixed {
		stream T11
		publish
	}`)
	s := openLive(t, "/t11", "T11", 1)

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
	status, body := post("/t11/pub?topic=t11.chat&event=note", payload)
	if status != 200 {
		t.Fatalf("publish: %d %s", status, body)
	}
	var answer publishAnswer
	if err := json.Unmarshal([]byte(body), &answer); err != nil || answer.Subject != "t11.chat" || answer.Stream != "T11" {
		t.Fatalf("publish answer %s (%v)", body, err)
	}
	ev := s.next()
	if ev.Data != payload || ev.Type != "note" || ev.ID != answer.ID {
		t.Fatalf("streamed %+v, want data %q type note id %s", ev, payload, answer.ID)
	}

	status, _ = post("/t11/one", "fixed")
	if status != 200 {
		t.Fatalf("publish to the only template: %d", status)
	}
	s.expectData("fixed")

	cases := []struct {
		name, url, body string
		want            int
	}{
		{"wildcard subject", "/t11/pub", "x", 400},
		{"wildcard topic", "/t11/pub?topic=t11.*", "x", 400},
		{"topic outside", "/t11/pub?topic=other.x", "x", 403},
		{"event type with newline", "/t11/pub?topic=t11.chat&event=a%0Ab", "x", 400},
		{"body over 1 MiB", "/t11/pub?topic=t11.chat", strings.Repeat("x", maxPublishBytes+1), 413},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := post(tc.url, tc.body); status != tc.want {
				t.Fatalf("status %d (%s), want %d", status, body, tc.want)
			}
		})
	}
	// nothing of the refused requests reached the stream
	status, _ = post("/t11/pub?topic=t11.chat", "after")
	if status != 200 {
		t.Fatal(status)
	}
	s.expectData("after")
}
