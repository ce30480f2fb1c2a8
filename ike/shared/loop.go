package shared

import (
	"math"
	"sync"
	"time"
)

// Loop is the event loop of one IKE SA: a mailbox of events (closures)
// run one at a time, in the order they were posted. It has no goroutine
// of its own while it is idle: a post to an idle loop starts one, which
// runs the queued events and exits when the queue is empty. An
// established SA that only waits for its DPD and rekey timers thus costs
// no goroutine stack; with thousands of idle tunnels the stacks were the
// largest part of their memory.
//
// Guarantees the engines rely on: events of one Loop never run
// concurrently, each sees everything the previous one did (the mutex
// hands the queue over), and events run in posting order (FIFO across
// Post and TryPost). Once stopped, queued and later events are dropped.
//
// The zero value is not usable; call Init before the first post.
type Loop struct {
	mu    sync.Mutex
	queue []func() // events not run yet: queue[head:]
	head  int
	// limit is the most queued events TryPost accepts; an int32 beside
	// the two flags, so that the Loop, which every IKE SA embeds, takes a
	// word less.
	limit   int32
	running bool // a goroutine is draining the queue
	stopped bool
	// done is closed by Stop; made on the first call of Done (most SAs
	// end without anyone waiting for them: no channel for them).
	done   chan struct{}
	exited chan struct{} // made by Close when it must wait; closed when the drain returns
	// afterEach runs after every event, in the loop (the IKEv1 engine
	// starts its next queued exchange there); nil for none.
	afterEach func()
}

// Init prepares the loop. limit bounds the queue for TryPost (the packet
// path); afterEach, when not nil, runs in the loop after every event.
func (l *Loop) Init(limit int, afterEach func()) {
	l.limit = int32(min(limit, math.MaxInt32))
	l.afterEach = afterEach
}

// closed is the Done channel of loops stopped before anyone asked for it.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Done is closed when the loop has been stopped.
func (l *Loop) Done() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.done == nil {
		if l.stopped {
			return closed
		}
		l.done = make(chan struct{})
	}
	return l.done
}

// Post queues ev; it reports false when the loop is stopped. It never
// blocks and never drops: the callers are timers, the Manager and other
// SAs, whose events are few and must not be lost (a lost timer event
// would leave an SA without its DPD or rekey). Received messages, which
// a peer may send at any rate, go through TryPost.
func (l *Loop) Post(ev func()) bool {
	return l.enqueue(ev, false, false)
}

// TryPost queues ev unless the queue already holds the loop's limit of
// events (or the loop is stopped); it never blocks. For the packet path:
// a dropped message is retransmitted by its sender.
func (l *Loop) TryPost(ev func()) bool {
	return l.enqueue(ev, true, false)
}

// TryRun is TryPost for a caller that can lend its goroutine to the
// loop: when no goroutine is draining the loop, ev (and the events
// posted while it runs) runs in the caller, which returns once the queue
// is empty. That spares the start of a goroutine, and the wake-up of
// another thread for it, per received message. It takes as long as the
// events do (a key exchange; a CRL fetch for certificate
// authentication): the caller must keep another goroutine receiving
// meanwhile.
func (l *Loop) TryRun(ev func()) bool { return l.enqueue(ev, true, true) }

// inlineEvents is the most events TryRun runs in its caller; what is
// still queued then goes to a goroutine of the loop's own, so that a
// stream of events for one SA does not keep the caller from its own work.
const inlineEvents = 4

// enqueue queues ev; when no goroutine drains the loop it starts one, or
// with inline drains up to inlineEvents in the caller (TryRun).
func (l *Loop) enqueue(ev func(), bounded, inline bool) bool {
	l.mu.Lock()
	if !l.queueLocked(ev, bounded) {
		l.mu.Unlock()
		return false
	}
	start := !l.running
	l.running = true
	l.mu.Unlock()
	switch {
	case start && inline:
		l.run(inlineEvents)
	case start:
		go l.drain()
	}
	return true
}

// queueLocked appends ev to the queue unless the loop is stopped or, when
// bounded, the queue is at its limit.
func (l *Loop) queueLocked(ev func(), bounded bool) bool {
	if l.stopped || (bounded && len(l.queue)-l.head >= int(l.limit)) {
		return false
	}
	if l.head > 0 && len(l.queue) == cap(l.queue) {
		// Reuse the room of events already run rather than grow the
		// buffer while the loop never gets idle.
		n := copy(l.queue, l.queue[l.head:])
		clear(l.queue[n:])
		l.queue, l.head = l.queue[:n], 0
	}
	l.queue = append(l.queue, ev)
	return true
}

// Ask runs f in the loop and waits for its answer; false when the loop
// stopped before f ran. f may stop the loop: its answer still counts.
// Not for use from an event of the loop itself.
func (l *Loop) Ask(f func() bool) bool {
	answer := make(chan bool, 1)
	done := l.Done()
	if !l.Post(func() { answer <- f() }) {
		return false
	}
	select {
	case ok := <-answer:
		return ok
	case <-done:
		// f may have stopped the loop: its answer is sent once it
		// returns, which the end of the running event tells.
		l.waitRunning()
		select {
		case ok := <-answer:
			return ok
		default:
			return false
		}
	}
}

// After arms a timer of clock whose expiry posts f to the loop (dropped
// if the loop has stopped by then). The timer goroutine never waits for
// the loop.
func (l *Loop) After(clock Clock, d time.Duration, f func()) Timer {
	return clock.AfterFunc(d, func() { l.Post(f) })
}

// Stop ends the loop from one of its own events: the events still queued
// and any posted later are dropped, and Done is closed. The running event
// finishes (and afterEach runs once more).
func (l *Loop) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopLocked()
}

func (l *Loop) stopLocked() {
	if l.stopped {
		return
	}
	l.stopped = true
	clear(l.queue)
	l.queue, l.head = nil, 0
	if l.done != nil {
		close(l.done)
	}
}

// Close stops the loop from outside it and waits until an event that is
// running has returned, so that nothing of the SA runs after Close. It
// must not be called from an event of the loop (that would wait for
// itself); an event calls Stop.
func (l *Loop) Close() {
	l.mu.Lock()
	l.stopLocked()
	l.mu.Unlock()
	l.waitRunning()
}

// waitRunning waits until no goroutine drains the loop (of a stopped
// loop: until the event running when it stopped has returned).
func (l *Loop) waitRunning() {
	l.mu.Lock()
	var wait chan struct{}
	if l.running {
		if l.exited == nil {
			l.exited = make(chan struct{})
		}
		wait = l.exited
	}
	l.mu.Unlock()
	if wait != nil {
		<-wait
	}
}

// drain runs queued events until the queue is empty or the loop stops;
// then the goroutine ends. At most one drain runs per Loop (running).
func (l *Loop) drain() { l.run(-1) }

// run is drain; with max >= 0 it runs at most max events and hands the
// rest, if any, to a goroutine (TryRun).
func (l *Loop) run(max int) {
	for n := 0; ; n++ {
		l.mu.Lock()
		if l.stopped || l.head == len(l.queue) {
			// An idle loop keeps no buffer: most SAs are idle most of
			// the time, and the next burst allocates a new one.
			l.queue, l.head = nil, 0
			l.running = false
			if l.exited != nil {
				close(l.exited)
				l.exited = nil
			}
			l.mu.Unlock()
			return
		}
		if n == max {
			l.mu.Unlock()
			go l.drain()
			return
		}
		ev := l.queue[l.head]
		l.queue[l.head] = nil
		l.head++
		l.mu.Unlock()
		ev()
		if l.afterEach != nil {
			l.afterEach()
		}
	}
}
