package caddysse

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode"

	"github.com/caddy-sse/caddy-sse/subject"
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// subjectTemplate is a NATS subject pattern whose tokens may hold request placeholders, parsed once at
// provision. Each placeholder value becomes part of exactly one token, so a client can never widen its scope
// by injecting '.', '*' or '>'.
type subjectTemplate struct {
	raw    string
	tokens []templateToken
}

type templateToken struct {
	literal string   // the token with its placeholders, as written
	keys    []string // placeholder names in the token; none for a literal token
}

// parseSubjectTemplate checks a template's syntax with every placeholder standing in for a plain token.
func parseSubjectTemplate(raw string) (subjectTemplate, error) {
	t := subjectTemplate{raw: raw}
	parts := splitTokens(raw)
	probe := make([]string, len(parts))
	for i, part := range parts {
		keys, err := placeholderKeys(part)
		if err != nil {
			return t, fmt.Errorf("subject %q: %w", raw, err)
		}
		t.tokens = append(t.tokens, templateToken{literal: part, keys: keys})
		probe[i] = part
		if len(keys) > 0 {
			probe[i] = "x"
		}
	}
	if !subject.ValidPattern(strings.Join(probe, ".")) {
		return t, fmt.Errorf("subject %q: not a valid NATS subject (tokens separated by '.', '*' for one token, '>' last)", raw)
	}
	return t, nil
}

// splitTokens splits a template on the dots outside placeholders ({http.auth.user.id} holds dots of its own).
func splitTokens(raw string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(raw); i++ {
		switch raw[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, raw[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, raw[start:])
}

// placeholderKeys lists the {placeholder} names in one token.
func placeholderKeys(token string) ([]string, error) {
	var keys []string
	for rest := token; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, fmt.Errorf("unbalanced '}' in %q", token)
			}
			return keys, nil
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unclosed placeholder in %q", token)
		}
		key := rest[open+1 : open+end]
		if key == "" || strings.ContainsAny(key, "{ \t") {
			return nil, fmt.Errorf("bad placeholder {%s} in %q", key, token)
		}
		keys = append(keys, key)
		rest = rest[open+end+1:]
	}
}

// streamSubject is the template with each placeholder token widened to '*': what the stream must capture.
func (t subjectTemplate) streamSubject() string {
	parts := make([]string, len(t.tokens))
	for i, tok := range t.tokens {
		parts[i] = tok.literal
		if len(tok.keys) > 0 {
			parts[i] = "*"
		}
	}
	return strings.Join(parts, ".")
}

// expandGlobal replaces the placeholders that do not depend on a request ({env.*}, {system.*}) once, at
// provision.
func (t subjectTemplate) expandGlobal(repl *caddy.Replacer) (subjectTemplate, error) {
	var b strings.Builder
	for i, tok := range t.tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		s := tok.literal
		for _, k := range tok.keys {
			if strings.HasPrefix(k, "env.") || strings.HasPrefix(k, "system.") {
				v := repl.ReplaceAll("{"+k+"}", "")
				if err := checkTokenValue(v); err != nil {
					return t, fmt.Errorf("subject %q: placeholder {%s}: %w", t.raw, k, err)
				}
				s = strings.Replace(s, "{"+k+"}", v, 1)
			}
		}
		b.WriteString(s)
	}
	expanded, err := parseSubjectTemplate(b.String())
	expanded.raw = t.raw
	return expanded, err
}

// resolve fills the template from the request's replacer. A value that would not be exactly one subject token
// is refused: 400 when the client chose it (query, header, cookie, path), 403 otherwise (an identity such as
// {http.auth.user.id} that cannot scope the request).
func (t subjectTemplate) resolve(repl *caddy.Replacer) (string, error) {
	var b strings.Builder
	for i, tok := range t.tokens {
		if i > 0 {
			b.WriteByte('.')
		}
		if len(tok.keys) == 0 {
			b.WriteString(tok.literal)
			continue
		}
		s := tok.literal
		for _, k := range tok.keys {
			v := repl.ReplaceAll("{"+k+"}", "")
			if err := checkTokenValue(v); err != nil {
				status := http.StatusForbidden
				if strings.HasPrefix(k, "http.request.") {
					status = http.StatusBadRequest
				}
				return "", caddyhttp.Error(status, fmt.Errorf("sse: placeholder {%s} in subject %q: %w", k, t.raw, err))
			}
			s = strings.Replace(s, "{"+k+"}", v, 1)
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

// checkTokenValue accepts a placeholder value that stays inside one subject token.
func checkTokenValue(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("empty value")
	case strings.ContainsAny(v, ".*>"):
		return fmt.Errorf("value %q contains '.', '*' or '>'", v)
	case strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fmt.Errorf("value %q contains whitespace or control characters", v)
	}
	return nil
}

// mergeSubjects adds subjects to have, dropping any subject another one already covers (JetStream refuses
// overlapping subjects in one stream). changed reports whether the set grew.
func mergeSubjects(have, add []string) (merged []string, changed bool) {
	if len(subject.Missing(have, add)) == 0 {
		return slices.Clone(have), false
	}
	return subject.Minimal(append(slices.Clone(have), add...)), true
}
