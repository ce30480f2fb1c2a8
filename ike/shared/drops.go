package shared

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// DropReason says why IKE dropped a received message without acting on
// it. Every reason has a counter (Drops) that the daemon shows in
// `ipsecgw stats` and the metrics, so that hostile or broken traffic is
// visible by kind without reading logs.
type DropReason uint8

// The drop reasons. Their labels (Label) are part of the stats JSON and the
// metrics; do not rename them.
const (
	// DropMalformed: the header, a length or the payload chain does not
	// parse or breaks the rules of its exchange. (Reason 0 is none.)
	DropMalformed DropReason = iota + 1
	// DropUnsupportedCritical: a payload of an unknown type with the
	// critical bit set (RFC 7296 §2.5); an IKE_SA_INIT request is answered
	// with UNSUPPORTED_CRITICAL_PAYLOAD, anything else is dropped.
	DropUnsupportedCritical
	// DropUnknownSPI: no IKE SA (ISAKMP SA for IKEv1) has our SPI (cookie).
	DropUnknownSPI
	// DropAuthFailed: the integrity check or the decryption failed (IKEv1:
	// the decrypted payloads do not parse or the HASH does not verify).
	DropAuthFailed
	// DropBadFragment: an IKE fragment (RFC 7383) that failed its integrity
	// check or broke the reassembly limits.
	DropBadFragment
	// DropUnexpectedMsgID: a request whose message ID is neither the next
	// one nor the last one answered (IKEv1: of another exchange, or of one
	// that completed).
	DropUnexpectedMsgID
	// DropUnexpectedResponse: a response to no request of ours that is
	// outstanding.
	DropUnexpectedResponse
	// DropRetransmission: a repeated request (or, in IKEv1, a repeated
	// answer) that was not processed again; the cached reply went out
	// instead (RFC 7296 §2.1).
	DropRetransmission
	// DropRetransmitLimited: a repeated request that came sooner than
	// AnswerGap after our last answer to it: counted, not answered again.
	DropRetransmitLimited
	// DropWrongState: a message the SA cannot take in its state (encrypted
	// before the keys exist, quick mode before phase 1 completed, unprotected
	// informational after it).
	DropWrongState
	// DropCookieRequired: an IKE_SA_INIT request without a valid COOKIE
	// while cookies are required, answered statelessly (RFC 7296 §2.6).
	DropCookieRequired
	// DropHalfOpenLimit: a request for a new SA dropped unanswered at the
	// half-open limit.
	DropHalfOpenLimit
	// DropQueueFull: the event queue of the message's IKE SA was full (the
	// peer retransmits).
	DropQueueFull
	// NumDropReasons bounds the reasons, for arrays indexed by them.
	NumDropReasons
)

var dropLabels = [NumDropReasons]string{
	DropMalformed:           "malformed",
	DropUnsupportedCritical: "unsupported_critical",
	DropUnknownSPI:          "unknown_spi",
	DropAuthFailed:          "auth_failed",
	DropBadFragment:         "bad_fragment",
	DropUnexpectedMsgID:     "unexpected_msgid",
	DropUnexpectedResponse:  "unexpected_response",
	DropRetransmission:      "retransmission",
	DropRetransmitLimited:   "retransmission_limited",
	DropWrongState:          "wrong_state",
	DropCookieRequired:      "cookie_required",
	DropHalfOpenLimit:       "half_open_limit",
	DropQueueFull:           "queue_full",
}

// Label is the reason's name in the stats and the metrics.
func (r DropReason) Label() string {
	if r < NumDropReasons && dropLabels[r] != "" {
		return dropLabels[r]
	}
	return "unknown"
}

// DropReasons lists every reason, in label order of the constants.
func DropReasons() []DropReason {
	rs := make([]DropReason, 0, NumDropReasons-1)
	for r := DropMalformed; r < NumDropReasons; r++ {
		rs = append(rs, r)
	}
	return rs
}

// Drop-log limits: per reason, at most DropLogLines lines in each
// DropLogWindow. Anyone can send IKE messages to port 500, so a line per
// dropped message would let an attacker fill the disk and bury the lines
// that matter; the counters count every drop, the log shows examples and
// how many were left out.
const (
	DropLogLines  = 10
	DropLogWindow = 10 * time.Second
)

// Drops counts dropped IKE messages by reason and rate-limits the log lines
// describing them. The Manager makes one and shares it with both engines;
// counting is lock-free and allocation-free. The zero value is not ready:
// use NewDrops.
type Drops struct {
	counts [NumDropReasons]atomic.Uint64
	now    func() time.Time

	mu   sync.Mutex
	logs [NumDropReasons]dropLog
}

// dropLog is the log budget of one reason in the current window.
type dropLog struct {
	start      time.Time
	lines      int
	suppressed uint64 // drops not logged since the last line
}

// NewDrops returns counters whose log windows follow clock (nil: the real
// clock).
func NewDrops(clock Clock) *Drops {
	d := &Drops{now: time.Now}
	if clock != nil {
		d.now = clock.Now
	}
	return d
}

// Count counts one drop of reason r without logging it.
func (d *Drops) Count(r DropReason) {
	if r < NumDropReasons {
		d.counts[r].Add(1)
	}
}

// Drop counts one drop of reason r and logs msg with args at debug level
// when r's log budget allows; the first line after lines were left out says
// how many ("suppressed").
func (d *Drops) Drop(log *slog.Logger, r DropReason, msg string, args ...any) {
	d.Count(r)
	if r >= NumDropReasons || log == nil || !log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	ok, suppressed := d.allowLine(r)
	if !ok {
		return
	}
	args = append(args, "drop", r.Label())
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	log.Debug(msg, args...)
}

// allowLine spends one line of r's budget, reporting false when the
// window's lines are used up, and the number of drops left out since the
// last line written.
func (d *Drops) allowLine(r DropReason) (bool, uint64) {
	now := d.now()
	d.mu.Lock()
	defer d.mu.Unlock()
	l := &d.logs[r]
	if l.start.IsZero() || now.Sub(l.start) >= DropLogWindow || now.Before(l.start) {
		l.start, l.lines = now, 0
	}
	if l.lines >= DropLogLines {
		l.suppressed++
		return false, 0
	}
	l.lines++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// Snapshot returns the counters, indexed by reason.
func (d *Drops) Snapshot() [NumDropReasons]uint64 {
	var out [NumDropReasons]uint64
	for r := range out {
		out[r] = d.counts[r].Load()
	}
	return out
}

// Get returns one counter.
func (d *Drops) Get(r DropReason) uint64 {
	if r >= NumDropReasons {
		return 0
	}
	return d.counts[r].Load()
}
