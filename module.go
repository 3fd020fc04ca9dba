// Package caddysse is a Caddy HTTP handler that serves Server-Sent Events fed by NATS JetStream.
//
// Each Caddy process tails a JetStream stream once, fans every event out to its own clients and replays what a
// reconnecting client missed (Last-Event-ID) from memory or from JetStream before live events continue.
package caddysse

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
	caddy.RegisterModule(App{})
	httpcaddyfile.RegisterHandlerDirective("sse", parseHandlerDirective)
	// After authentication and encode, before the handlers that usually answer a request, so that
	// basic_auth / forward_auth run first and encode wraps the stream without an `order` line.
	httpcaddyfile.RegisterDirectiveOrder("sse", httpcaddyfile.Before, "invoke")
	httpcaddyfile.RegisterGlobalOption("sse", parseGlobalOption)
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddy.Validator             = (*Handler)(nil)
	_ caddy.CleanerUpper          = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)

	_ caddy.App             = (*App)(nil)
	_ caddy.Provisioner     = (*App)(nil)
	_ caddy.Validator       = (*App)(nil)
	_ caddy.CleanerUpper    = (*App)(nil)
	_ caddyfile.Unmarshaler = (*App)(nil)
)
