package caddysse

import (
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/dustin/go-humanize"
)

func parseHandlerDirective(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	handler := new(Handler)
	err := handler.UnmarshalCaddyfile(h.Dispenser)
	return handler, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	sse [<matcher>] [<subject>...] {
//		subject       <template>...        # NATS subject templates; placeholders fill whole tokens
//		topic_param   <name>               # clients narrow with ?<name>=<subject> (repeatable)
//		stream        <name>               # JetStream stream, default SSE
//		stream_replicas <n>                # for a stream caddy-sse creates: replicas, default 1 (at most 5)
//		stream_max_age  <duration>         #   how long events are kept, default 24h
//		stream_max_bytes <size>            #   size cap such as 512MiB, default none (max_store bounds it)
//		stream_storage  file | memory      #   default file
//		nats_url      <url>...             # default: the embedded server
//		nats_creds    <file>               # or nats_token <token> | nats_user <user> <password> | nats_nkey <file>
//		retry         <duration>           # default 3s
//		heartbeat     <duration>           # default 15s; above 25s warns (QUIC's 30s idle timeout)
//		write_timeout <duration>           # default 10s
//		buffer        <events>             # default 256
//		replay_limit  <events>             # default 10000
//		first_event   new | oldest | last <n>   # default new
//		last_event_id_param <name>         # default lastEventId
//		event_header  <name>               # default Sse-Event
//		reset_event   <name>               # default reset
//		max_connections <n>                # default 0 (no cap)
//		close_delay   <duration>           # default 5s
//		publish                            # accept POST to publish
//		client_key    <template>           # who a connection belongs to, e.g. {http.auth.user.id}#{query.pc}
//		max_per_key   <n> [replace|reject] # default no cap; over it: end the oldest (default) or turn away
//		max_lifetime  <duration>           # default none; each stream ends after it, ±10% jitter
//		heartbeat_event <name>             # default: heartbeats are comments
//		connect_event <name>               # default none: a named event without id at connect
//		max_connect_rate <n>/s             # per node, default no cap
//		presence_subject <template>        # with client_key: presence records published there
//		http1_takeover on | off            # default on: plaintext HTTP/1.1 streams held by a writer pool
//	}
//
// Every option may appear once. Routes on the same stream and NATS must give the same stream_* options.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // directive name
	h.Subjects = append(h.Subjects, d.RemainingArgs()...)
	seen := map[string]bool{}
	if len(h.Subjects) > 0 {
		seen["subject"] = true
	}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("sse: option %q given twice", opt)
		}
		seen[opt] = true
		if err := h.unmarshalOption(d, opt); err != nil {
			return err
		}
	}
	if len(h.Subjects) == 0 {
		return d.Err("sse: at least one subject is required (on the directive line or with 'subject')")
	}
	return nil
}

func (h *Handler) unmarshalOption(d *caddyfile.Dispenser, opt string) error {
	switch opt {
	case "subject":
		h.Subjects = d.RemainingArgs()
		if len(h.Subjects) == 0 {
			return d.ArgErr()
		}
	case "topic_param":
		return oneArg(d, &h.TopicParam)
	case "stream":
		return oneArg(d, &h.Stream)
	case "stream_replicas":
		return intArg(d, &h.StreamReplicas, 1)
	case "stream_max_age":
		return durationArg(d, &h.StreamMaxAge)
	case "stream_max_bytes":
		return sizeArg(d, &h.StreamMaxBytes)
	case "stream_storage":
		if err := oneArg(d, &h.StreamStorage); err != nil {
			return err
		}
		if h.StreamStorage != storageFile && h.StreamStorage != storageMemory {
			return d.Errf("sse: stream_storage %q: want file or memory", h.StreamStorage)
		}
	case "last_event_id_param":
		return oneArg(d, &h.LastEventIDParam)
	case "event_header":
		return oneArg(d, &h.EventHeader)
	case "reset_event":
		return oneArg(d, &h.ResetEvent)
	case "nats_url":
		h.nats().URLs = d.RemainingArgs()
		if len(h.NATS.URLs) == 0 {
			return d.ArgErr()
		}
	case "nats_creds":
		return oneArg(d, &h.nats().CredsFile)
	case "nats_nkey":
		return oneArg(d, &h.nats().NKeyFile)
	case "nats_token":
		return oneArg(d, &h.nats().Token)
	case "nats_user":
		args := d.RemainingArgs()
		if len(args) != 2 {
			return d.Errf("sse: nats_user wants <user> <password>, got %d values", len(args))
		}
		h.nats().User, h.NATS.Password = args[0], args[1]
	case "retry":
		return durationArg(d, &h.Retry)
	case "heartbeat":
		return durationArg(d, &h.Heartbeat)
	case "write_timeout":
		return durationArg(d, &h.WriteTimeout)
	case "close_delay":
		return durationArg(d, &h.CloseDelay)
	case "buffer":
		return intArg(d, &h.Buffer, 1)
	case "replay_limit":
		return intArg(d, &h.ReplayLimit, 1)
	case "max_connections":
		return intArg(d, &h.MaxConnections, 0)
	case "first_event":
		return h.unmarshalFirstEvent(d)
	case "publish":
		if d.NextArg() {
			return d.Errf("sse: publish takes no value, got %q", d.Val())
		}
		h.Publish = true
	default:
		if known, err := h.unmarshalConnectionOption(d, opt); known {
			return err
		}
		return d.Errf("sse: unknown option %q", opt)
	}
	return nil
}

func (h *Handler) unmarshalFirstEvent(d *caddyfile.Dispenser) error {
	args := d.RemainingArgs()
	switch {
	case len(args) == 1 && (args[0] == firstEventNew || args[0] == firstEventOldest):
		h.FirstEvent = args[0]
	case len(args) == 2 && args[0] == firstEventLast:
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return d.Errf("sse: first_event last %q: want a whole number of at least 1", args[1])
		}
		h.FirstEvent, h.FirstEventCount = firstEventLast, n
	default:
		return d.Errf("sse: first_event wants new, oldest or last <n>, got %q", args)
	}
	return nil
}

func (h *Handler) nats() *NATSConfig {
	if h.NATS == nil {
		h.NATS = new(NATSConfig)
	}
	return h.NATS
}

func oneArg(d *caddyfile.Dispenser, dst *string) error {
	opt := d.Val()
	if !d.NextArg() {
		return d.Errf("sse: %s wants one value", opt)
	}
	*dst = d.Val()
	if d.NextArg() {
		return d.Errf("sse: %s wants one value, got another: %q", opt, d.Val())
	}
	return nil
}

func durationArg(d *caddyfile.Dispenser, dst *caddy.Duration) error {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := caddy.ParseDuration(s)
	if err != nil || v <= 0 {
		return d.Errf("sse: %s %q: want a positive duration such as 10s", opt, s)
	}
	*dst = caddy.Duration(v)
	return nil
}

func intArg(d *caddyfile.Dispenser, dst *int, min int) error {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < min {
		return d.Errf("sse: %s %q: want a whole number of at least %d", opt, s, min)
	}
	*dst = v
	return nil
}

// parseGlobalOption reads the global `sse` block, the embedded server's settings. Syntax:
//
//	{
//		sse {
//			listen     <host:port> | off   # default 127.0.0.1:4222
//			store_dir  <path>              # default <Caddy data dir>/sse/jetstream
//			max_store  <size>              # JetStream disk limit, default 1GiB
//			max_memory <size>              # JetStream memory limit, default 256MiB
//			max_connections <n>            # event streams open at once in this process, default no cap
//			sync       always | <interval> # when writes reach the disk, default always
//			auth_token <token>             # or auth_user <user> <password>; default none
//		}
//	}
//
// Credentials may be placeholders such as {env.NATS_TOKEN}, expanded at start-up.
func parseGlobalOption(d *caddyfile.Dispenser, _ any) (any, error) {
	app := new(App)
	if err := app.UnmarshalCaddyfile(d); err != nil {
		return nil, err
	}
	return httpcaddyfile.App{Name: "sse", Value: caddyconfig.JSON(app, nil)}, nil
}

// UnmarshalCaddyfile reads the global `sse` block; see parseGlobalOption for the syntax.
func (a *App) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // option name
	if d.NextArg() {
		return d.Errf("sse: the global sse option takes a block, not %q", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		opt := d.Val()
		if seen[opt] {
			return d.Errf("sse: global option %q given twice", opt)
		}
		seen[opt] = true
		switch opt {
		case "listen":
			if err := oneArg(d, &a.Listen); err != nil {
				return err
			}
		case "store_dir":
			if err := oneArg(d, &a.StoreDir); err != nil {
				return err
			}
		case "max_store":
			if err := sizeArg(d, &a.MaxStore); err != nil {
				return err
			}
		case "max_memory":
			if err := sizeArg(d, &a.MaxMemory); err != nil {
				return err
			}
		case "max_connections":
			if err := intArg(d, &a.MaxConnections, 1); err != nil {
				return err
			}
		case "sync":
			if err := oneArg(d, &a.Sync); err != nil {
				return err
			}
			if _, _, err := parseSync(a.Sync); err != nil {
				return d.Err(err.Error())
			}
		case "auth_token":
			if err := oneArg(d, &a.AuthToken); err != nil {
				return err
			}
		case "auth_user":
			args := d.RemainingArgs()
			if len(args) != 2 {
				return d.Errf("sse: auth_user wants <user> <password>, got %d values", len(args))
			}
			a.AuthUser, a.AuthPassword = args[0], args[1]
		default:
			return d.Errf("sse: unknown global option %q", opt)
		}
	}
	if seen["auth_token"] && seen["auth_user"] {
		return d.Err("sse: use auth_token or auth_user, not both")
	}
	return nil
}

func sizeArg(d *caddyfile.Dispenser, dst *int64) error {
	opt := d.Val()
	var s string
	if err := oneArg(d, &s); err != nil {
		return err
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v == 0 || v > 1<<62 {
		return d.Errf("sse: %s %q: want a size such as 512MiB or 10GB", opt, s)
	}
	*dst = int64(v)
	return nil
}
