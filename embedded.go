package caddysse

import (
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
)

// syncAlways is the default of the global sync option: the embedded server is a single node, so a write not on
// its disk yet is on no disk at all, and one lost on power failure would let sequences be handed out again under
// ids clients already hold.
const syncAlways = "always"

// parseSync reads the global sync option: "always" or a positive duration.
func parseSync(s string) (always bool, interval time.Duration, err error) {
	if s == syncAlways {
		return true, 0, nil
	}
	d, err := caddy.ParseDuration(s)
	if err != nil || d <= 0 {
		return false, 0, fmt.Errorf("sse: sync %q: want always or a positive duration such as 1s", s)
	}
	return false, d, nil
}

// expandAuth expands placeholders in the credentials. One that expands to nothing (an unset variable) is an
// error: it would silently leave the server open.
func (a *App) expandAuth() error {
	repl := caddy.NewReplacer()
	for _, f := range []struct {
		name string
		v    *string
	}{{"auth_token", &a.AuthToken}, {"auth_user", &a.AuthUser}, {"auth_password", &a.AuthPassword}} {
		raw := *f.v
		*f.v = repl.ReplaceKnown(raw, "")
		if raw != "" && *f.v == "" {
			return fmt.Errorf("sse: %s %q is empty once expanded (is the variable set?)", f.name, raw)
		}
	}
	return nil
}

func (a *App) validateAuth() error {
	switch {
	case a.AuthToken != "" && (a.AuthUser != "" || a.AuthPassword != ""):
		return fmt.Errorf("sse: use auth_token or auth_user, not both")
	case a.AuthUser == "" && a.AuthPassword != "":
		return fmt.Errorf("sse: auth_password needs auth_user")
	case a.AuthUser != "" && a.AuthPassword == "":
		return fmt.Errorf("sse: auth_user %q needs a password", a.AuthUser)
	}
	return nil
}
