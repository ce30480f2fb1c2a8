package pinger

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTally feeds the accounting a run with every kind of event: an
// answer, a late one, a duplicate, a reply of another run, one for a
// request never sent, a runt, and two requests never answered.
func TestTally(t *testing.T) {
	const token = 0x0123456789abcdef
	tl := newTally(token, 6, 100*time.Millisecond)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		tl.send(t0.Add(time.Duration(i) * 10 * time.Millisecond))
	}
	payload := func(tok, idx uint64) []byte {
		b := make([]byte, payloadHeader+4)
		binary.BigEndian.PutUint64(b, tok)
		binary.BigEndian.PutUint64(b[8:], idx)
		return b
	}
	tl.reply(payload(token, 0), t0.Add(3*time.Millisecond))
	tl.reply(payload(token, 2), t0.Add(20*time.Millisecond+250*time.Millisecond)) // late: 250 ms
	tl.reply(payload(token, 0), t0.Add(40*time.Millisecond))                      // duplicate
	tl.reply(payload(token+1, 1), t0.Add(40*time.Millisecond))                    // another run's
	tl.reply(payload(token, 5), t0.Add(40*time.Millisecond))                      // never sent
	tl.reply(payload(token, 1)[:payloadHeader-1], t0.Add(40*time.Millisecond))    // runt: ignored
	tl.reply(payload(token, 4), t0.Add(45*time.Millisecond))
	r := tl.result()
	want := Result{Sent: 5, Received: 3, Lost: 2, Late: 1, Duplicates: 1, Foreign: 2,
		MaxRTT: 250 * time.Millisecond, Duration: 40 * time.Millisecond}
	if r.Sent != want.Sent || r.Received != want.Received || r.Lost != want.Lost || r.Late != want.Late ||
		r.Duplicates != want.Duplicates || r.Foreign != want.Foreign || r.MaxRTT != want.MaxRTT || r.Duration != want.Duration {
		t.Errorf("got %+v\nwant %+v", r, want)
	}
	if len(r.LostSeqs) != 2 || r.LostSeqs[0] != 1 || r.LostSeqs[1] != 3 {
		t.Errorf("lost sequence numbers %v, want [1 3]", r.LostSeqs)
	}
	if got := (Result{Sent: 101, Duration: time.Second}).Rate(); got != 100 {
		t.Errorf("rate of 101 requests over 1 s = %v, want 100", got)
	}
}

// loopbackConn opens a raw ICMP socket in a network namespace of its own
// with only lo, up: the kernel answers the echo requests itself. The
// namespace has no name and disappears when the socket is closed, so the
// test leaves nothing behind. It needs root (CAP_NET_ADMIN and
// CAP_NET_RAW); run it under the lab lock like the lab's tests.
func loopbackConn(t *testing.T) net.PacketConn {
	t.Helper()
	if testing.Short() {
		t.Skip("creates a network namespace (make unit runs without)")
	}
	type opened struct {
		c   net.PacketConn
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		// The thread enters the new namespace and is never unlocked: Go
		// ends it when this goroutine returns instead of reusing it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- opened{err: err}
			return
		}
		if err := loUp(); err != nil {
			ch <- opened{err: err}
			return
		}
		c, err := net.ListenIP("ip4:icmp", nil)
		ch <- opened{c, err}
	}()
	o := <-ch
	if o.err != nil {
		t.Skipf("no private network namespace with a raw ICMP socket (needs root): %v", o.err)
	}
	t.Cleanup(func() { o.c.Close() })
	return o.c
}

// loUp brings lo up in the calling thread's network namespace.
func loUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

var localhost = &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}

// TestRunLoopback: 300 requests 10 ms apart to 127.0.0.1 leave at 100 a
// second (the last one ~2.99 s after the first) and every one is answered
// once.
func TestRunLoopback(t *testing.T) {
	conn := loopbackConn(t)
	r, err := Run(context.Background(), conn, Config{Dst: localhost, Count: 300, Interval: 10 * time.Millisecond, Size: 200, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	if r.Sent != 300 || r.Received != 300 || r.Lost != 0 || r.Duplicates != 0 || r.Foreign != 0 {
		t.Errorf("want 300 sent and answered once each: %+v", r)
	}
	// The schedule is absolute: however late single wake-ups are, the run
	// spans 299 intervals give or take the first and last requests' lag.
	if r.Duration < 2990*time.Millisecond-r.MaxLag || r.Duration > 2990*time.Millisecond+r.MaxLag {
		t.Errorf("300 requests took %v (max lag %v), want 2.99 s", r.Duration, r.MaxLag)
	}
}

// faultyConn drops the requests whose index is ≡ 3 mod 10 instead of
// sending them, delays the request with index 5 by 300 ms after the pinger
// recorded its send time, and hands every reply whose index is ≡ 1 mod 7 to
// the reader twice.
type faultyConn struct {
	net.PacketConn
	repeat  []byte
	repeats atomic.Int32
}

func index(icmp []byte) uint64 { return binary.BigEndian.Uint64(icmp[icmpHeader+8:]) }

func (c *faultyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	switch i := index(b); {
	case i%10 == 3:
		return len(b), nil
	case i == 5:
		time.Sleep(300 * time.Millisecond)
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *faultyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.repeat != nil {
		n := copy(b, c.repeat)
		c.repeat = nil
		c.repeats.Add(1)
		return n, localhost, nil
	}
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil && n >= icmpHeader+payloadHeader && b[0] == icmpEchoReply && index(b)%7 == 1 {
		c.repeat = append([]byte(nil), b[:n]...)
	}
	return n, addr, err
}

// TestRunCountsFaults runs the pinger over faultyConn on loopback: the
// dropped requests are lost (and listed), the repeated replies are
// duplicates, the delayed one is late, and everything else is received.
func TestRunCountsFaults(t *testing.T) {
	conn := &faultyConn{PacketConn: loopbackConn(t)}
	const count = 100
	r, err := Run(context.Background(), conn, Config{Dst: localhost, Count: count, Interval: 5 * time.Millisecond,
		Late: 250 * time.Millisecond, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(r)
	const dropped = count / 10
	if r.Sent != count || r.Lost != dropped || r.Received != count-dropped {
		t.Errorf("want %d sent, %d lost, %d received: %+v", count, dropped, count-dropped, r)
	}
	for i, seq := range r.LostSeqs {
		if seq != 10*i+3 {
			t.Errorf("lost sequence numbers %v, want 3, 13, ..., 93", r.LostSeqs)
			break
		}
	}
	if want := int(conn.repeats.Load()); r.Duplicates != want || want < 10 {
		t.Errorf("%d duplicates counted, %d replayed (want ≥ 10)", r.Duplicates, want)
	}
	// Loopback answers in microseconds; only a badly starved machine
	// makes another reply late (TestTally checks the exact counting).
	if r.Late < 1 || r.MaxRTT < 300*time.Millisecond {
		t.Errorf("want the delayed request's reply late, with an RTT ≥ 300 ms: %d late, max RTT %v", r.Late, r.MaxRTT)
	}
	// The 300 ms stall put the sender some 60 intervals behind; it caught up
	// instead of shifting the rest of the schedule.
	if r.MaxLag < 250*time.Millisecond || r.Duration > time.Duration(count-1)*5*time.Millisecond+r.MaxLag {
		t.Errorf("duration %v with max lag %v: the schedule did not catch up", r.Duration, r.MaxLag)
	}
}

// TestRunCancel: a cancelled context ends the run with the counts so far.
func TestRunCancel(t *testing.T) {
	conn := loopbackConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r, err := Run(ctx, conn, Config{Dst: localhost, Count: 1000, Interval: 10 * time.Millisecond})
	if err != context.DeadlineExceeded {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	// Requests are due at 0, 10, ..., 200 ms at most.
	if r.Sent < 1 || r.Sent > 21 {
		t.Errorf("%d sent in 200 ms at 100/s, want 1 to 21", r.Sent)
	}
}
