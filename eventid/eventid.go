package eventid

import (
	"errors"
	"strconv"
	"time"
)

// Event ids are "<epoch>-<seq>". The epoch names the stream incarnation (its
// creation time), so a recreated stream, whose sequences restart at 1, can
// never be mistaken for the old one. The seq is the JetStream stream sequence
// in decimal, the number operators see in stream tools. Both parts use only
// [A-Za-z0-9._], so browsers send the id back on cross-origin reconnects
// without a CORS preflight.

const (
	maxEpochLen = 64
	maxSeqLen   = 20 // len("18446744073709551615")
)

// ErrMalformed: an event id is not "<epoch>-<seq>" as Format writes it.
var ErrMalformed = errors.New("eventid: malformed event id")

// MaxLen is the longest id Format writes for epoch.
func MaxLen(epoch string) int { return len(epoch) + 1 + maxSeqLen }

// Epoch names a stream incarnation by its creation time: base 36 of
// its Unix microseconds, lowercase. Every node derives the same epoch from the
// same stream, so ids stay valid when a client reconnects to another node.
// Times before 1970 give "0".
func Epoch(created time.Time) string {
	return strconv.FormatInt(max(created.UnixMicro(), 0), 36)
}

// Format returns the event id for seq in epoch.
func Format(epoch string, seq uint64) string {
	return string(Append(make([]byte, 0, MaxLen(epoch)), epoch, seq))
}

// Append appends the event id for seq in epoch to dst.
func Append(dst []byte, epoch string, seq uint64) []byte {
	dst = append(dst, epoch...)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 10)
}

// Parse splits an id written by Format. Anything else, including ids
// from other servers, leading zeros, or a seq beyond uint64, is
// ErrMalformed: the caller treats such a cursor as lost and resets the
// client. seq 0 is valid and means "before the first event".
func Parse(s string) (epoch string, seq uint64, err error) {
	dash := -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '-' {
			dash = i
			break
		}
		if !isEpochByte(c) {
			return "", 0, ErrMalformed
		}
	}
	if dash < 1 || dash > maxEpochLen {
		return "", 0, ErrMalformed
	}
	digits := s[dash+1:]
	if len(digits) == 0 || len(digits) > maxSeqLen || (digits[0] == '0' && len(digits) > 1) {
		return "", 0, ErrMalformed
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return "", 0, ErrMalformed
		}
	}
	seq, err = strconv.ParseUint(digits, 10, 64)
	if err != nil { // only overflow is left
		return "", 0, ErrMalformed
	}
	return s[:dash], seq, nil
}

func isEpochByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_'
}
