package sad

import (
	"container/heap"
	"sync"
	"time"
)

// lifeQueue runs the time lifetimes of a Table's SAs on one timer: a
// min-heap of the installed SAs that still have a time limit to reach,
// ordered by the nearer of their soft and hard deadlines. One runtime timer
// per SA (and a closure for it) cost a hub with 10,000 tunnels about 170
// bytes per SA; the heap costs a slot and a few fields of the SA.
//
// Deadlines are nanoseconds on the queue's monotonic clock (since epoch,
// plus one so that 0 can mean "none").
type lifeQueue struct {
	mu    sync.Mutex
	epoch time.Time
	sas   lifeHeap
	timer *time.Timer // created on the first add
	armed int64       // deadline the timer is set for (0: stopped)
}

// clock is now on the queue's clock.
func (q *lifeQueue) clock(now time.Time) int64 { return int64(now.Sub(q.epoch)) + 1 }

// add queues sa's time limits (soft and hard Lifetime.Time, counted from
// its creation) as of now. An SA without a time limit is not queued.
func (q *lifeQueue) add(sa *SA, now time.Time) {
	var at [2]int64
	age := now.Sub(sa.Created())
	for i, d := range [2]time.Duration{sa.softTime, sa.hardTime} {
		if d > 0 {
			at[i] = q.clock(now) + int64(max(d-age, 0))
		}
	}
	if at == [2]int64{} {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	sa.lifeAt = at
	heap.Push(&q.sas, sa)
	q.rearmLocked(now)
}

// remove takes sa's pending limits out of the queue: a removed SA raises
// no more time events.
func (q *lifeQueue) remove(sa *SA) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if sa.lifeIdx < 0 {
		return
	}
	heap.Remove(&q.sas, int(sa.lifeIdx))
	sa.lifeAt = [2]int64{}
	q.rearmLocked(time.Now())
}

// len is the number of SAs with a pending time limit.
func (q *lifeQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.sas)
}

// rearmLocked sets the timer for the nearest deadline, or stops it when no
// SA waits.
func (q *lifeQueue) rearmLocked(now time.Time) {
	if len(q.sas) == 0 {
		if q.timer != nil && q.armed != 0 {
			q.timer.Stop()
		}
		q.armed = 0
		return
	}
	next := q.sas[0].nextDeadline()
	if next == q.armed {
		return
	}
	q.armed = next
	wait := time.Duration(max(next-q.clock(now), 0))
	if q.timer == nil {
		q.timer = time.AfterFunc(wait, q.fire)
	} else {
		q.timer.Reset(wait)
	}
}

// expiry is one due time limit.
type expiry struct {
	sa   *SA
	hard bool
}

// fire delivers every limit that is due, outside the lock (the events go
// to Options.OnEvent), and rearms the timer for the next.
func (q *lifeQueue) fire() {
	now := time.Now()
	c := q.clock(now)
	var due []expiry
	q.mu.Lock()
	for len(q.sas) > 0 && q.sas[0].nextDeadline() <= c {
		sa := q.sas[0]
		for i, hard := range [2]bool{false, true} {
			if at := sa.lifeAt[i]; at != 0 && at <= c {
				due = append(due, expiry{sa, hard})
				sa.lifeAt[i] = 0
			}
		}
		if sa.nextDeadline() == 0 {
			heap.Pop(&q.sas)
		} else {
			heap.Fix(&q.sas, 0)
		}
	}
	q.armed = 0 // the timer fired: whatever comes next needs arming
	q.rearmLocked(now)
	q.mu.Unlock()
	for _, e := range due {
		e.sa.expire(e.hard, CauseTime)
	}
}

// nextDeadline is the nearer pending time limit of sa (0: none); with
// lifeQueue.mu held.
func (sa *SA) nextDeadline() int64 {
	s, h := sa.lifeAt[0], sa.lifeAt[1]
	switch {
	case s == 0:
		return h
	case h == 0:
		return s
	}
	return min(s, h)
}

// lifeHeap is a container/heap of SAs by nextDeadline; each SA knows its
// index (lifeIdx, -1 when not queued) so that remove is O(log n).
type lifeHeap []*SA

func (h lifeHeap) Len() int           { return len(h) }
func (h lifeHeap) Less(i, j int) bool { return h[i].nextDeadline() < h[j].nextDeadline() }
func (h lifeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].lifeIdx, h[j].lifeIdx = int32(i), int32(j)
}
func (h *lifeHeap) Push(x any) {
	sa := x.(*SA)
	sa.lifeIdx = int32(len(*h))
	*h = append(*h, sa)
}
func (h *lifeHeap) Pop() any {
	old := *h
	sa := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	sa.lifeIdx = -1
	return sa
}
