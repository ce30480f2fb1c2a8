package shared

import (
	"math"
	mrand "math/rand/v2"
	"time"
)

// Retransmit controls IKE retransmission for both versions: the n-th
// retransmission (n from 0) waits Timeout * Base^n (at most Limit when
// Limit > 0), with up to Jitter percent subtracted at random, and the
// exchange is abandoned after Tries retransmissions.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
	Jitter  int // percent
	Limit   time.Duration
}

// AnswerGap is the least time between two answers to the same request
// of the peer, the first one or one from the cache. A retransmission that
// arrives sooner is counted (DropRetransmitLimited) and not answered. No
// implementation retransmits that fast (strongSwan waits 4 s at first,
// Libreswan 0.5 s), so what does is a duplicate or a replay, and answering
// every replay would let anyone who captured one request aim our cached
// response at the peer as often as they send it. A peer whose copy of our
// answer was lost retransmits again later and is answered then.
const AnswerGap = 250 * time.Millisecond

// AnswerDue says whether a cached answer last sent at last may go out
// again at now.
func AnswerDue(last, now time.Time) bool {
	return last.IsZero() || now.Sub(last) >= AnswerGap
}

// Retransmission defaults, strongSwan's (charon.retransmit_timeout, _base,
// _tries).
const (
	DefaultRetransmitTimeout = 4 * time.Second
	DefaultRetransmitBase    = 1.8
	DefaultRetransmitTries   = 5
)

// WithRetransmitDefaults fills the zero fields of rt with the defaults.
func WithRetransmitDefaults(rt Retransmit) Retransmit {
	if rt.Timeout <= 0 {
		rt.Timeout = DefaultRetransmitTimeout
	}
	if rt.Base < 1 {
		rt.Base = DefaultRetransmitBase
	}
	if rt.Tries <= 0 {
		rt.Tries = DefaultRetransmitTries
	}
	return rt
}

// RetransmitDelay is how long to wait before the n-th retransmission (n
// from 0) of a request: strongSwan's timeout × base^n, capped by Limit,
// less up to Jitter percent at random. Both versions use it, so that
// one set of settings times every IKE exchange.
func RetransmitDelay(rt Retransmit, n int) time.Duration {
	d := time.Duration(float64(rt.Timeout) * math.Pow(rt.Base, float64(n)))
	if rt.Limit > 0 && d > rt.Limit {
		d = rt.Limit
	}
	if rt.Jitter > 0 {
		d -= time.Duration(mrand.Int64N(int64(d)*int64(min(rt.Jitter, 100))/100 + 1))
	}
	return d
}
