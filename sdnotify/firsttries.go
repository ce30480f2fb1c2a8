package sdnotify

import (
	"slices"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// FirstTries follows IKE's events until every conn of a set (the auto=start
// conns) has had its first try: it was established, or a negotiation for
// it failed (a Failure event, whatever comes after it: keyingtries may
// try again). It is not safe for concurrent use; feed it from one
// subscription.
type FirstTries struct {
	pending []string
}

// NewFirstTries waits for the first tries of conns.
func NewFirstTries(conns []string) *FirstTries {
	return &FirstTries{pending: slices.Clone(conns)}
}

// Observe takes the next event and reports whether it completed the set
// (true exactly once; never for an empty set, which is Done from the
// start).
func (f *FirstTries) Observe(ev ike.Event) bool {
	if f.pending == nil {
		return false
	}
	var tried string
	switch e := ev.(type) {
	case shared.StateChanged:
		if e.To == ike.StateEstablished {
			tried = e.Conn
		}
	case shared.Failure:
		tried = e.Conn
	}
	if i := slices.Index(f.pending, tried); i >= 0 {
		f.pending = slices.Delete(f.pending, i, i+1)
	}
	if len(f.pending) == 0 {
		f.pending = nil
		return true
	}
	return false
}

// Pending lists the conns still waiting for their first try.
func (f *FirstTries) Pending() []string { return slices.Clone(f.pending) }

// Done reports whether every conn had its first try.
func (f *FirstTries) Done() bool { return f.pending == nil }
