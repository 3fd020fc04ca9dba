package sseclient

import (
	"bytes"
	"strconv"
)

// Event payloads are small JSON objects: {"r":"<run>","n":<number>,"t":<unix nanos>}
// plus an optional "p" padding string. The run tag lets clients ignore events
// left in the stream by earlier runs; n is what loss, duplicate and order
// checks use; t gives the latency.

func AppendPayload(dst []byte, run string, n, t int64, pad []byte) []byte {
	dst = append(dst, `{"r":"`...)
	dst = append(dst, run...)
	dst = append(dst, `","n":`...)
	dst = strconv.AppendInt(dst, n, 10)
	dst = append(dst, `,"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	if len(pad) > 0 {
		dst = append(dst, `,"p":"`...)
		dst = append(dst, pad...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

var (
	keyRun  = []byte(`"r":"`)
	keyNum  = []byte(`"n":`)
	keyTime = []byte(`"t":`)
)

// ParsePayload extracts the run tag, number and timestamp without allocating.
func ParsePayload(data []byte) (run []byte, n, t int64, ok bool) {
	i := bytes.Index(data, keyRun)
	if i < 0 {
		return nil, 0, 0, false
	}
	rest := data[i+len(keyRun):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, 0, 0, false
	}
	run = rest[:j]
	if n, ok = intAfter(data, keyNum); !ok {
		return nil, 0, 0, false
	}
	if t, ok = intAfter(data, keyTime); !ok {
		return nil, 0, 0, false
	}
	return run, n, t, true
}

func intAfter(data, key []byte) (int64, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	var v int64
	digits := 0
	for _, c := range data[i+len(key):] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
		digits++
	}
	return v, digits > 0 && digits <= 19
}
