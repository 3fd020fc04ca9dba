package caddysse

import (
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/caddy-sse/caddy-sse/jetstream"
)

// Presence records: with client_key and presence_subject, a node publishes one when a key's first connection
// on it opens and when its last one there closes. They go out on core NATS, at most once: a node that dies
// publishes no "offline", and a record sent while NATS is unreachable is lost. An app that builds "who is
// online" keeps, per key, the set of nodes whose latest record says online, and treats a node as gone when
// that node's records stop (see the README).

const (
	presenceOnline  = "online"
	presenceOffline = "offline"
)

type presenceRecord struct {
	Key   string    `json:"key"`
	Node  string    `json:"node"`
	State string    `json:"state"`
	Time  time.Time `json:"time"`
}

func (h *Handler) announcePresence(conn *jetstream.Conn, subject, key, state string) {
	if conn == nil {
		return
	}
	data, _ := json.Marshal(presenceRecord{Key: key, Node: keyNode, State: state, Time: time.Now().UTC()})
	if err := conn.Tell(subject, data); err != nil {
		h.logger.Debug("presence record not sent", zap.String("subject", subject), zap.Error(err))
	}
}
