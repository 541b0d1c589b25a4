package detect

// match counts a match won by w against l.
func (d *Detector) match(w, l string, ref Ref) {
	pw, pl := d.player(w), d.player(l)
	pw.matches++
	pl.matches++
	pr := d.pair(pw, pl)
	aWon := w < l
	if aWon {
		pr.winsA++
	}
	if pr.matches > 0 && aWon != pr.lastA {
		pr.alts++
	}
	pr.lastA = aWon
	pr.matches++
	pr.matchEv.add(ref)
}

// pair is what two accounts did together: lockstep moves, and matches
// between them (wins of a, alternations of the winner).
type pair struct {
	a, b     *player // a.id < b.id
	dirty    bool
	together int
	stepEv   refs
	matches  int
	winsA    int
	alts     int
	lastA    bool
	matchEv  refs
}

// edge is transfers from one account to another.
type edge struct {
	k     pairKey // from a to b
	dirty bool
	n     int
	ev    refs
}

// pair returns a's and b's pair (a != b), marked changed.
func (d *Detector) pair(a, b *player) *pair {
	if b.id < a.id {
		a, b = b, a
	}
	k := pairKey{a.id, b.id}
	pr := d.pairs[k]
	if pr == nil {
		pr = &pair{a: a, b: b}
		d.pairs[k] = pr
	}
	if !pr.dirty {
		pr.dirty = true
		d.dirtyPairs = append(d.dirtyPairs, pr)
	}
	return pr
}

// transfer counts an item given by from to to.
func (d *Detector) transfer(from, to string, ref Ref) {
	k := pairKey{from, to}
	e := d.edges[k]
	if e == nil {
		e = &edge{k: k}
		d.edges[k] = e
		d.into[to] = append(d.into[to], e)
	}
	e.n++
	e.ev.add(ref)
	if !e.dirty {
		e.dirty = true
		d.dirtyEdges = append(d.dirtyEdges, e)
	}
}
