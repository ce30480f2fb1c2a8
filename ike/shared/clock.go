package shared

import "time"

// Clock is the source of time and timers. Tests inject a fake one; nil in
// the Manager's options means the real clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for fake clocks, from the
	// goroutine advancing time) once d has elapsed. f must not block.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer armed by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened yet.
	Stop() bool
}

// RealClock is the Clock of the time package.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
