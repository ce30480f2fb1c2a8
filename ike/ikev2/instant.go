package ikev2

import "time"

// instant is a time of the Engine's clock in 8 bytes instead of a
// time.Time's 24: nanoseconds after the Engine's epoch, 0 for none (the
// zero time.Time). An IKE SA keeps five; with thousands of idle SAs, that
// is what brings the ikeSA struct from the 1,024 B size class to 896 B.
// The epoch is a reading of the clock, monotonic part included, so the
// durations between instants are those between the times they stand for.
type instant int64

// epochLead puts the epoch before any time an SA can record (all come
// after the Engine was made), so that none maps to 0 ("none").
const epochLead = time.Second

// instant is the instant of t (0 for the zero time).
func (e *Engine) instant(t time.Time) instant {
	if t.IsZero() {
		return 0
	}
	return instant(max(t.Sub(e.epoch), 1))
}

// time is the time of instant i (the zero time for 0).
func (e *Engine) time(i instant) time.Time {
	if i == 0 {
		return time.Time{}
	}
	return e.epoch.Add(time.Duration(i))
}

// now is the clock's time as an instant.
func (e *Engine) now() instant { return e.instant(e.clock.Now()) }
