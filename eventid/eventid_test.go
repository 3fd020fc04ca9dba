package eventid

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestEpoch(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.UnixMicro(0), "0"},
		{time.UnixMicro(35), "z"},
		{time.UnixMicro(36), "10"},
		{time.UnixMicro(1_700_000_000_123_456), strconv.FormatInt(1_700_000_000_123_456, 36)},
		{time.Time{}, "0"},
		{time.Unix(-5, 0), "0"},
	} {
		if got := Epoch(tc.t); got != tc.want {
			t.Errorf("Epoch(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
	// Different creation times, even a microsecond apart, give different epochs.
	a := time.Date(2025, 3, 1, 12, 0, 0, 1000, time.UTC)
	if Epoch(a) == Epoch(a.Add(time.Microsecond)) {
		t.Error("epochs one microsecond apart are equal")
	}
	if got := Epoch(a.In(time.FixedZone("x", 3600))); got != Epoch(a) {
		t.Errorf("epoch depends on time zone: %q", got)
	}
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		epoch string
		seq   uint64
		want  string
	}{
		{"k3x9", 0, "k3x9-0"},
		{"k3x9", 42, "k3x9-42"},
		{"0", 18446744073709551615, "0-18446744073709551615"},
	} {
		if got := Format(tc.epoch, tc.seq); got != tc.want {
			t.Errorf("Format(%q, %d) = %q, want %q", tc.epoch, tc.seq, got, tc.want)
		}
		if got := string(Append([]byte("x"), tc.epoch, tc.seq)); got != "x"+tc.want {
			t.Errorf("Append = %q, want x%q", got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	long := strings.Repeat("a", maxEpochLen)
	for _, tc := range []struct {
		in    string
		epoch string
		seq   uint64
		ok    bool
	}{
		{"k3x9-42", "k3x9", 42, true},
		{"k3x9-0", "k3x9", 0, true},
		{"Ab.c_9-7", "Ab.c_9", 7, true},
		{"e-18446744073709551615", "e", 18446744073709551615, true},
		{long + "-1", long, 1, true},
		{"", "", 0, false},
		{"-", "", 0, false},
		{"k3x9", "", 0, false},
		{"k3x9-", "", 0, false},
		{"-42", "", 0, false},
		{"k3x9-042", "", 0, false},
		{"k3x9-00", "", 0, false},
		{"k3x9-4a", "", 0, false},
		{"k3x9-+4", "", 0, false},
		{"k3x9--4", "", 0, false},
		{"k3x9- 4", "", 0, false},
		{"k3x9-4 ", "", 0, false},
		{"k3 x9-4", "", 0, false},
		{"k3x9-1-2", "", 0, false},
		{"é-1", "", 0, false},
		{"k3x9\x00-1", "", 0, false},
		{"k3x9-1\n", "", 0, false},
		{"e-18446744073709551616", "", 0, false},
		{"e-123456789012345678901", "", 0, false},
		{long + "a-1", "", 0, false},
		{"42", "", 0, false},
		{"k3x9:42", "", 0, false},
	} {
		epoch, seq, err := Parse(tc.in)
		if tc.ok {
			if err != nil || epoch != tc.epoch || seq != tc.seq {
				t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", tc.in, epoch, seq, err, tc.epoch, tc.seq)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) || epoch != "" || seq != 0 {
			t.Errorf("Parse(%q) = %q, %d, %v; want ErrMalformed", tc.in, epoch, seq, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"k3x9-42", "k3x9-0", "-", "a-01", "e-18446744073709551616", "A.b_c-9", "x-1-2"} {
		f.Add(s, uint64(42))
	}
	f.Fuzz(func(t *testing.T, s string, seq uint64) {
		epoch, n, err := Parse(s)
		if err == nil {
			// Only canonical ids parse, so an id names one event in one way.
			if got := Format(epoch, n); got != s {
				t.Fatalf("Parse(%q) = %q, %d; formats back as %q", s, epoch, n, got)
			}
			if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
				t.Fatalf("accepted id %q has characters outside [A-Za-z0-9._-]", s)
			}
		}
		// Any epoch made of allowed characters round-trips with any seq.
		epoch = strings.Map(func(r rune) rune {
			if r < 0x80 && isEpochByte(byte(r)) {
				return r
			}
			return -1
		}, s)
		if epoch == "" || len(epoch) > maxEpochLen {
			epoch = "e"
		}
		id := Format(epoch, seq)
		if e, n, err := Parse(id); err != nil || e != epoch || n != seq {
			t.Fatalf("Parse(Format(%q, %d)) = %q, %d, %v", epoch, seq, e, n, err)
		}
	})
}
