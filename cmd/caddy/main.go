// Command caddy is a Caddy binary with the sse module built in, for development and the README's examples.
// Production builds use xcaddy: xcaddy build --with github.com/caddy-sse/caddy-sse
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-sse/caddy-sse"
)

func main() {
	caddycmd.Main()
}
