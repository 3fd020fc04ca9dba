// Command authsvc is the smallest auth service Caddy's forward_auth can ask: it finds a session token in the
// "session" cookie, a "token" query parameter or an "Authorization: Bearer" header, and answers 200 with the
// user in X-User, or 401. Real services look the token up in a session store or verify a signed token; the
// contract with Caddy is the same.
//
//	go run ./examples/forward-auth/authsvc -listen 127.0.0.1:9001
//
// Browsers' EventSource cannot send headers: on the same site it sends cookies (withCredentials for another
// origin, see examples/cors); a query parameter works everywhere but ends up in access logs and browser history.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/url"
	"strings"
)

// sessions stands for a session store: token -> user. User names become one NATS subject token each, so they
// must not contain '.', '*', '>' or whitespace (caddy-sse refuses such a value with 400).
var sessions = map[string]string{
	"tok-alice": "alice",
	"tok-bob":   "bob",
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on (keep it private: Caddy asks it)")
	flag.Parse()
	http.HandleFunc("/check", check)
	log.Printf("auth service on %s", *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}

func check(w http.ResponseWriter, r *http.Request) {
	user, ok := sessions[token(r)]
	if !ok {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	w.Header().Set("X-User", user) // forward_auth's copy_headers puts it on the request to sse
	w.WriteHeader(http.StatusOK)
}

// token reads the client's credentials from the request Caddy forwards: the client's own headers (cookies
// included) are copied, and its original URI is in X-Forwarded-Uri.
func token(r *http.Request) string {
	if c, err := r.Cookie("session"); err == nil {
		return c.Value
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return bearer
	}
	if u, err := url.Parse(r.Header.Get("X-Forwarded-Uri")); err == nil {
		return u.Query().Get("token")
	}
	return ""
}
