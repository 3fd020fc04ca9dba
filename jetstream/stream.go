package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-sse/caddy-sse/eventid"
	"github.com/caddy-sse/caddy-sse/subject"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Stream defaults, used for fields left zero.
const (
	DefaultMaxAge = 24 * time.Hour
	// DefaultMaxBytes is unlimited: a stream's byte limit is reserved up front against the server's whole
	// JetStream store, so a few streams with a fixed limit would exhaust a small store (the embedded server's).
	// Age bounds the history; the server's store bounds the total.
	DefaultMaxBytes int64 = -1
	DefaultMaxMsgs  int64 = -1 // unlimited
	DefaultReplicas       = 1
)

// managedKey marks, in the stream's metadata, the streams caddy-sse
// created. Only those are ever changed; anyone else's stream is left alone.
const (
	managedKey   = "caddy_sse.managed"
	managedValue = "true"
)

// StreamConfig describes the stream holding the events.
type StreamConfig struct {
	Name     string
	Subjects []string      // subjects to capture
	MaxAge   time.Duration // default 24h
	MaxBytes int64         // default -1 (unlimited; see DefaultMaxBytes)
	MaxMsgs  int64         // default -1 (unlimited)
	Replicas int           // default 1
	Memory   bool          // memory storage instead of file
}

// StreamState is what the tail and replays need to know about a stream.
// Epoch names the stream incarnation: it changes when the stream is
// deleted and created again, and sequences restart. The limits and counts
// let a reader judge a jump in sequences (see historyLost).
type StreamState struct {
	Epoch             string
	Created           time.Time
	FirstSeq, LastSeq uint64
	LastTime          time.Time // timestamp of the message at LastSeq
	Msgs, Bytes       uint64    // messages and bytes held

	// Limits, as configured; 0 or -1 means unlimited.
	MaxAge            time.Duration
	MaxMsgs           int64
	MaxBytes          int64
	MaxMsgsPerSubject int64
	// DiscardNew: MaxMsgs and MaxBytes refuse new messages instead of
	// removing old ones. DiscardNewPerSubject: MaxMsgsPerSubject does too.
	DiscardNew           bool
	DiscardNewPerSubject bool
}

func (cfg StreamConfig) withDefaults() StreamConfig {
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.MaxMsgs == 0 {
		cfg.MaxMsgs = DefaultMaxMsgs
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = DefaultReplicas
	}
	return cfg
}

func (cfg StreamConfig) natsConfig() natsjs.StreamConfig {
	storage := natsjs.FileStorage
	if cfg.Memory {
		storage = natsjs.MemoryStorage
	}
	return natsjs.StreamConfig{
		Name:        cfg.Name,
		Description: "Server-Sent Events history (caddy-sse)",
		Subjects:    slices.Clone(cfg.Subjects),
		Retention:   natsjs.LimitsPolicy,
		Discard:     natsjs.DiscardOld,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     cfg.MaxMsgs,
		Replicas:    cfg.Replicas,
		Storage:     storage,
		AllowDirect: true,
		Metadata:    map[string]string{managedKey: managedValue},
	}
}

// errSubjectsNotAdded wraps a failed update of a managed stream's subjects.
// The stream itself is usable, so the tail carries on with what it has.
var errSubjectsNotAdded = errors.New("could not add subjects to stream")

// EnsureStream creates the stream if it is missing. If it exists and
// caddy-sse created it, subjects it lacks are added (nothing else is
// changed). A stream created by someone else is left alone; what it lacks
// is logged. Either way, replicas, max age, max bytes and storage that
// differ from cfg are logged as a warning, and the stream is used as it is.
func (c *Conn) EnsureStream(ctx context.Context, cfg StreamConfig) (StreamState, error) {
	st, err := c.ensureStream(ctx, cfg)
	if errors.Is(err, errSubjectsNotAdded) {
		return StreamState{}, err
	}
	return st, err
}

// ensureStream is EnsureStream, except that a failed subject update still
// returns the state of the stream, which exists.
func (c *Conn) ensureStream(ctx context.Context, cfg StreamConfig) (StreamState, error) {
	if cfg.Name == "" {
		return StreamState{}, errors.New("jetstream: stream name is empty")
	}
	if err := c.connected(); err != nil {
		return StreamState{}, err
	}
	asked := cfg
	cfg = cfg.withDefaults()
	log := c.log.With(zap.String("stream", cfg.Name))

	s, err := c.js.Stream(ctx, cfg.Name)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		if len(cfg.Subjects) == 0 {
			return StreamState{}, fmt.Errorf("%w: %q does not exist and no subjects are configured to create it", ErrNoStream, cfg.Name)
		}
		s, err = c.js.CreateStream(ctx, cfg.natsConfig())
		if errors.Is(err, natsjs.ErrStreamNameAlreadyInUse) {
			// Another node created it first; fall through to the checks.
			s, err = c.js.Stream(ctx, cfg.Name)
		} else if err == nil {
			log.Info("created stream",
				zap.Strings("subjects", cfg.Subjects),
				zap.Duration("max_age", cfg.MaxAge),
				zap.Int64("max_bytes", cfg.MaxBytes),
				zap.Int64("max_msgs", cfg.MaxMsgs),
				zap.Int("replicas", cfg.Replicas),
				zap.Bool("memory", cfg.Memory))
			return stateFromInfo(s.CachedInfo()), nil
		}
	}
	if err != nil {
		return StreamState{}, fmt.Errorf("jetstream: stream %q: %w", cfg.Name, err)
	}

	info := s.CachedInfo()
	managed := info.Config.Metadata[managedKey] == managedValue
	c.warnDifferences(log, cfg.Name, streamDifferences(info.Config, asked, managed), managed)
	missing := subject.Missing(info.Config.Subjects, cfg.Subjects)
	if !managed {
		if len(missing) > 0 {
			log.Warn("stream was not created by caddy-sse and does not capture some configured subjects; leaving it unchanged",
				zap.Strings("missing_subjects", missing),
				zap.Strings("stream_subjects", info.Config.Subjects))
		}
		if !info.Config.AllowDirect {
			log.Debug("stream was not created by caddy-sse and has direct get disabled")
		}
		return stateFromInfo(info), nil
	}
	if len(missing) == 0 {
		return stateFromInfo(info), nil
	}
	upd := info.Config
	upd.Subjects = append(slices.Clone(upd.Subjects), missing...)
	s2, err := c.js.UpdateStream(ctx, upd)
	if err != nil {
		log.Error("could not add subjects to stream", zap.Strings("subjects", missing), zap.Error(err))
		return stateFromInfo(info), fmt.Errorf("jetstream: stream %q: %w %v: %w", cfg.Name, errSubjectsNotAdded, missing, err)
	}
	log.Info("added subjects to stream", zap.Strings("subjects", missing))
	return stateFromInfo(s2.CachedInfo()), nil
}

// StreamState reads the stream's incarnation and sequence range.
func (c *Conn) StreamState(ctx context.Context, stream string) (StreamState, error) {
	if err := c.connected(); err != nil {
		return StreamState{}, err
	}
	s, err := c.js.Stream(ctx, stream)
	if errors.Is(err, natsjs.ErrStreamNotFound) {
		return StreamState{}, fmt.Errorf("%w: %q", ErrNoStream, stream)
	}
	if err != nil {
		return StreamState{}, fmt.Errorf("jetstream: stream %q: %w", stream, err)
	}
	return stateFromInfo(s.CachedInfo()), nil
}

func stateFromInfo(info *natsjs.StreamInfo) StreamState {
	cfg := info.Config
	return StreamState{
		Epoch:                eventid.Epoch(info.Created),
		Created:              info.Created,
		FirstSeq:             info.State.FirstSeq,
		LastSeq:              info.State.LastSeq,
		LastTime:             info.State.LastTime,
		Msgs:                 info.State.Msgs,
		Bytes:                info.State.Bytes,
		MaxAge:               cfg.MaxAge,
		MaxMsgs:              cfg.MaxMsgs,
		MaxBytes:             cfg.MaxBytes,
		MaxMsgsPerSubject:    cfg.MaxMsgsPerSubject,
		DiscardNew:           cfg.Discard == natsjs.DiscardNew,
		DiscardNewPerSubject: cfg.Discard == natsjs.DiscardNew && cfg.DiscardNewPerSubject,
	}
}
