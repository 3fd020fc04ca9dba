package hub

import "strings"

// index maps subject patterns to subscriptions as a trie of tokens, so
// dispatching one subject visits only the trie paths that can match it
// (its literal tokens and '*' branches) instead of testing every
// subscription. With 10k subscriptions on distinct subjects a publish costs
// a handful of map lookups.
//
// Removal is O(1) per pattern: every slot remembers its position in the
// node's list and is swap-removed, and nodes left empty are pruned so
// short-lived per-user subjects do not leak.
//
// The index is guarded by the hub's lock.
type index struct {
	root *node
}

type node struct {
	parent    *node
	token     string // key in parent.literal; unused for a '*' child
	star      bool   // this is parent.starChild
	literal   map[string]*node
	starChild *node
	exact     []slot // patterns ending at this node
	rest      []slot // patterns "<path to this node>.>"
}

// slot is one registered pattern of a subscription: k is the index of the
// matching entry in sub.entries, so a moved slot can update its position.
type slot struct {
	sub *Subscription
	k   int
}

// entry is where one pattern of a subscription lives in the index.
type entry struct {
	node *node
	rest bool // in node.rest rather than node.exact
	pos  int  // position in that list
}

func newIndex() index { return index{root: &node{}} }

// insert registers pattern (already validated) for s.
func (x *index) insert(s *Subscription, pattern string) {
	n := x.root
	for {
		tok, next, more := strings.Cut(pattern, ".")
		if tok == ">" { // validation guarantees it is the last token
			s.entries = append(s.entries, entry{node: n, rest: true, pos: len(n.rest)})
			n.rest = append(n.rest, slot{sub: s, k: len(s.entries) - 1})
			return
		}
		n = n.child(tok)
		if !more {
			s.entries = append(s.entries, entry{node: n, pos: len(n.exact)})
			n.exact = append(n.exact, slot{sub: s, k: len(s.entries) - 1})
			return
		}
		pattern = next
	}
}

// child returns the child for tok, creating it.
func (n *node) child(tok string) *node {
	if tok == "*" {
		if n.starChild == nil {
			n.starChild = &node{parent: n, star: true}
		}
		return n.starChild
	}
	c := n.literal[tok]
	if c == nil {
		if n.literal == nil {
			n.literal = make(map[string]*node)
		}
		c = &node{parent: n, token: tok}
		n.literal[tok] = c
	}
	return c
}

// remove unregisters every pattern of s.
func (x *index) remove(s *Subscription) {
	for k := range s.entries {
		e := s.entries[k]
		list := &e.node.exact
		if e.rest {
			list = &e.node.rest
		}
		last := len(*list) - 1
		moved := (*list)[last]
		(*list)[e.pos] = moved
		moved.sub.entries[moved.k].pos = e.pos
		(*list)[last] = slot{}
		*list = (*list)[:last]
		x.prune(e.node)
	}
	s.entries = s.entries[:0]
}

// prune detaches empty nodes from the leaf up.
func (x *index) prune(n *node) {
	for n != x.root && len(n.exact) == 0 && len(n.rest) == 0 && len(n.literal) == 0 && n.starChild == nil {
		p := n.parent
		if n.star {
			p.starChild = nil
		} else {
			delete(p.literal, n.token)
		}
		n = p
	}
}

// collect appends to out every subscription with a pattern matching
// subject, once each: sub.matchedSeq marks who is already in out for this
// seq (seq grows with every publish, so marks never need clearing).
func (x *index) collect(out []*Subscription, subject string, seq uint64) []*Subscription {
	return x.root.collect(out, subject, seq)
}

// collect matches the remaining subject (at least one token) below n.
func (n *node) collect(out []*Subscription, subject string, seq uint64) []*Subscription {
	out = appendUnmarked(out, n.rest, seq) // '>' takes any non-empty remainder
	tok, next, more := strings.Cut(subject, ".")
	if c := n.literal[tok]; c != nil {
		out = c.collectAt(out, next, more, seq)
	}
	if c := n.starChild; c != nil {
		out = c.collectAt(out, next, more, seq)
	}
	return out
}

// collectAt continues below n once a token has been consumed.
func (n *node) collectAt(out []*Subscription, next string, more bool, seq uint64) []*Subscription {
	if more {
		return n.collect(out, next, seq)
	}
	return appendUnmarked(out, n.exact, seq)
}

func appendUnmarked(out []*Subscription, slots []slot, seq uint64) []*Subscription {
	for _, sl := range slots {
		if s := sl.sub; s.matchedSeq != seq {
			s.matchedSeq = seq
			out = append(out, s)
		}
	}
	return out
}
