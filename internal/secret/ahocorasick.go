package secret

import "slices"

// automaton is an Aho–Corasick matcher over bytes: one pass over the text
// finds every occurrence of every pattern, however many patterns there are.
// It is immutable once built and safe for concurrent use.
type automaton struct {
	root  [256]int32 // transitions from the root; 0 = stay at the root
	nodes []acNode
	edges []acEdge // per node, sorted by byte: nodes[i].edges[0]..[1]
	alt   []int32  // per pattern: the next pattern with the same bytes, -1 if none
}

type acNode struct {
	edges [2]int32 // [start, end) into automaton.edges
	fail  int32
	out   int32 // pattern ending here, -1 if none
	dict  int32 // nearest node on the fail chain with out ≥ 0, -1 if none
	depth int32
}

type acEdge struct {
	b  byte
	to int32
}

// buildAutomaton builds the matcher for patterns (non-empty byte strings);
// a match reports the pattern's index. Identical patterns each report.
func buildAutomaton(patterns [][]byte) *automaton {
	// A trie with map children first, flattened below.
	type tnode struct {
		next  map[byte]int32
		out   int32
		depth int32
	}
	trie := []tnode{{next: map[byte]int32{}, out: -1}}
	alt := make([]int32, len(patterns))
	last := map[int32]int32{} // node → last pattern ending there
	for i, p := range patterns {
		alt[i] = -1
		cur := int32(0)
		for _, c := range p {
			nx, ok := trie[cur].next[c]
			if !ok {
				nx = int32(len(trie))
				trie = append(trie, tnode{next: map[byte]int32{}, out: -1, depth: trie[cur].depth + 1})
				trie[cur].next[c] = nx
			}
			cur = nx
		}
		if trie[cur].out < 0 {
			trie[cur].out = int32(i)
		} else {
			alt[last[cur]] = int32(i)
		}
		last[cur] = int32(i)
	}
	a := &automaton{nodes: make([]acNode, len(trie)), alt: alt}
	for i, t := range trie {
		start := int32(len(a.edges))
		keys := make([]byte, 0, len(t.next))
		for k := range t.next {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			a.edges = append(a.edges, acEdge{b: k, to: t.next[k]})
		}
		a.nodes[i] = acNode{edges: [2]int32{start, int32(len(a.edges))}, out: t.out, dict: -1, depth: t.depth}
	}
	for _, e := range a.edges[a.nodes[0].edges[0]:a.nodes[0].edges[1]] {
		a.root[e.b] = e.to
	}
	// Breadth first: a node's fail link points at a shallower node, already
	// complete when the node is reached.
	queue := make([]int32, 0, len(a.nodes))
	for _, e := range a.edges[a.nodes[0].edges[0]:a.nodes[0].edges[1]] {
		queue = append(queue, e.to) // depth 1: fail to the root
	}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		for _, e := range a.edges[a.nodes[u].edges[0]:a.nodes[u].edges[1]] {
			v := e.to
			if u != 0 {
				a.nodes[v].fail = a.step(a.nodes[u].fail, e.b)
			}
			f := a.nodes[v].fail
			if a.nodes[f].out >= 0 {
				a.nodes[v].dict = f
			} else {
				a.nodes[v].dict = a.nodes[f].dict
			}
			queue = append(queue, v)
		}
	}
	return a
}

// child returns the node reached from s on c, or -1.
func (a *automaton) child(s int32, c byte) int32 {
	if s == 0 {
		return a.root[c]
	}
	es := a.edges[a.nodes[s].edges[0]:a.nodes[s].edges[1]]
	if len(es) <= 8 {
		for _, e := range es {
			if e.b == c {
				return e.to
			}
		}
		return -1
	}
	i, ok := slices.BinarySearchFunc(es, c, func(e acEdge, c byte) int { return int(e.b) - int(c) })
	if !ok {
		return -1
	}
	return es[i].to
}

// step is the goto-with-failure transition.
func (a *automaton) step(s int32, c byte) int32 {
	for {
		if nx := a.child(s, c); nx > 0 || s == 0 {
			if nx < 0 {
				return 0
			}
			return nx
		}
		s = a.nodes[s].fail
	}
}

// scan calls hit(pattern, end) for every occurrence of every pattern in b;
// end is the index just past the occurrence.
func (a *automaton) scan(b []byte, hit func(pattern int32, end int)) {
	s := int32(0)
	for i, c := range b {
		s = a.step(s, c)
		if s == 0 {
			continue
		}
		for o := a.nodes[s].out; o >= 0; o = a.alt[o] {
			hit(o, i+1)
		}
		for d := a.nodes[s].dict; d >= 0; d = a.nodes[d].dict {
			for o := a.nodes[d].out; o >= 0; o = a.alt[o] {
				hit(o, i+1)
			}
		}
	}
}
