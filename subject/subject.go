package subject

import "strings"

// NATS subjects are tokens separated by '.'. In a pattern, a token that is
// exactly "*" matches any one token and a last token ">" matches one or more
// tokens. As in NATS, '*' or '>' inside a longer token is a literal.

// Valid reports whether s is a concrete subject: non-empty tokens, no
// wildcard tokens, no whitespace or control bytes.
func Valid(s string) bool {
	return validTokens(s, false)
}

// ValidPattern reports whether p is a subject pattern: like Valid,
// but "*" tokens are allowed anywhere and ">" as the last token.
func ValidPattern(p string) bool {
	return validTokens(p, true)
}

func validTokens(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	for {
		tok, rest, more := strings.Cut(s, ".")
		if tok == "" {
			return false
		}
		if tok == "*" || tok == ">" {
			if !wildcards || (tok == ">" && more) {
				return false
			}
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c == 0x7f {
				return false
			}
		}
		if !more {
			return true
		}
		s = rest
	}
}

// Match reports whether subject matches pattern. It walks both strings
// once, byte by byte, without allocating: it runs for every event of every
// replay. Tokens in subject are always literal. The result for invalid input
// is defined but not meaningful: a ">" that is not the last token compares as
// a literal.
func Match(pattern, subject string) bool {
	p, s := 0, 0 // starts of the current tokens (possibly empty)
	for {
		switch {
		case p+1 == len(pattern) && pattern[p] == '>':
			return true // the subject still has at least its current token
		case p < len(pattern) && pattern[p] == '*' && (p+1 == len(pattern) || pattern[p+1] == '.'):
			p++
			for s < len(subject) && subject[s] != '.' {
				s++
			}
		default:
			for p < len(pattern) && pattern[p] != '.' {
				if s == len(subject) || subject[s] != pattern[p] {
					return false
				}
				p++
				s++
			}
			if s < len(subject) && subject[s] != '.' {
				return false // the subject's token is longer
			}
		}
		// Both are at the end of a token: the end of the string or a '.'.
		if p == len(pattern) || s == len(subject) {
			return p == len(pattern) && s == len(subject)
		}
		p++
		s++
	}
}

// Covers reports whether pattern a matches every subject that pattern b
// matches. It decides the inclusion token by token: "*" in a covers any
// single token of b, and a last ">" in a covers whatever remains of b.
// Nothing but a ">" in a covers a last ">" in b, which stands for any number
// of tokens.
func Covers(a, b string) bool {
	for {
		at, arest, amore := strings.Cut(a, ".")
		if at == ">" && !amore {
			return true
		}
		bt, brest, bmore := strings.Cut(b, ".")
		if bt == ">" && !bmore {
			return false
		}
		if at != bt && at != "*" {
			return false
		}
		if !amore || !bmore {
			return amore == bmore
		}
		a, b = arest, brest
	}
}

// Minimal returns patterns without duplicates and without any pattern that
// another one covers, in their first order. JetStream refuses a consumer
// whose filters contain one another and a stream whose subjects overlap; the
// hub's index holds fewer entries. Partially overlapping patterns are kept:
// neither covers the other.
func Minimal(patterns []string) []string {
	out := make([]string, 0, len(patterns))
	for i, p := range patterns {
		redundant := false
		for j, q := range patterns {
			// Equal patterns cover each other: keep the first of them.
			if i != j && Covers(q, p) && (q != p || j < i) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, p)
		}
	}
	return out
}

// CoveredByAny reports whether some pattern of patterns covers s.
func CoveredByAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if Covers(p, s) {
			return true
		}
	}
	return false
}

// Missing returns the patterns of want that no pattern of have covers.
func Missing(have, want []string) []string {
	var missing []string
	for _, w := range want {
		if !CoveredByAny(have, w) {
			missing = append(missing, w)
		}
	}
	return missing
}
