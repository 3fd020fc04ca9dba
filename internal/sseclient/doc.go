// Package sseclient holds the wire-level pieces of the project's test
// clients (the load tool and the fault suite): a raw HTTP/1.1 request and
// response reader for one long-lived GET, a push-style WHATWG event-stream
// parser, and the numbered event payload both tools publish and check.
package sseclient
