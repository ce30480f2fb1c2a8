package esp

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// countSender counts packets and bytes without copying.
type countSender struct{ pkts, bytes int }

func (c *countSender) Send(p []conn.OutPacket) (int, error) {
	for _, x := range p {
		c.pkts++
		c.bytes += len(x.B)
	}
	return len(p), nil
}

// nullTUN is a Device whose Write only counts (the fake TUN copies each
// written packet, which would hide the dataplane's own allocations).
type nullTUN struct {
	tun.Device
	written int
}

func (n *nullTUN) Write(bufs [][]byte, off int) (int, error) {
	n.written += len(bufs)
	return len(bufs), nil
}

func TestSealOpenAllocs(t *testing.T) {
	skipUnderRace(t)
	for _, s := range allSuites(t) {
		t.Run(s.name, func(t *testing.T) {
			tx, rx := s.protector(t), s.protector(t)
			inner := ipv4Packet(1400, "10.1.0.2", "10.2.0.2", 1)
			buf, off := newBuf(inner)
			work := make([]byte, len(buf))
			seq := uint64(1)
			var pkt []byte
			if a := testing.AllocsPerRun(50, func() {
				copy(work, buf)
				var err error
				_, pkt, err = SealPacket(tx, 0x100, seq, true, work, off, len(inner))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, _, err := OpenPacket(rx, seq, true, pkt); err != nil {
					t.Fatal(err)
				}
				seq++
			}); a != 0 {
				t.Fatalf("SealPacket+OpenPacket: %v allocations per packet", a)
			}
			// A forged packet is rejected without allocating either.
			copy(work, buf)
			_, pkt, _ = SealPacket(tx, 0x100, seq, true, work, off, len(inner))
			pkt[len(pkt)-1] ^= 1
			if a := testing.AllocsPerRun(50, func() {
				if _, _, _, err := OpenPacket(rx, seq, true, pkt); err != ErrAuth {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Fatalf("rejecting a forged packet: %v allocations", a)
			}
		})
	}
}

func TestSAPathAllocs(t *testing.T) {
	skipUnderRace(t)
	s := allSuites(t)[0]
	out, in := saPair(t, s, 0x4242, true)
	tab := sad.NewTable(sad.Options{})
	if err := tab.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	ot := sad.NewTable(sad.Options{})
	if err := ot.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	inner := ipv4Packet(512, "10.1.0.2", "10.2.0.2", 1)
	buf, off := newBuf(inner)
	work := make([]byte, len(buf))
	if a := testing.AllocsPerRun(100, func() {
		copy(work, buf)
		_, pkt, r := Seal(out, work, off, len(inner))
		if r != sad.NotDropped {
			t.Fatal(r)
		}
		if _, _, _, r := Open(tab, pkt); r != sad.NotDropped {
			t.Fatal(r)
		}
		// Replays and unknown SPIs are dropped without allocating.
		if _, _, _, r := Open(tab, pkt); r != sad.DropReplay {
			t.Fatal(r)
		}
	}); a != 0 {
		t.Fatalf("sad-level seal/open: %v allocations per packet", a)
	}
}

// TestTUNToSocketAllocs drives the outbound path one batch at a time
// (fake TUN read, SPD and SAD lookup, sequence numbers, seal, send) and the
// inbound path (HandleESP, open, replay, selector check, TUN write) and
// asserts zero allocations per batch, for the first suite and for
// AES-CBC+HMAC (sealed and, with HMAC-SHA1, opened in batches).
func TestTUNToSocketAllocs(t *testing.T) {
	skipUnderRace(t)
	for _, s := range allSuites(t) {
		if s.name == allSuites(t)[0].name || s.name == "aes128+sha256" || s.name == "aes128+sha1" {
			t.Run(s.name, func(t *testing.T) { tunToSocketAllocs(t, s) })
		}
	}
}

func tunToSocketAllocs(t *testing.T, s suite) {
	const batch, runs = 32, 20
	fake := tun.NewFake("alloc", 1400, batch, batch*(runs+2))
	l := &spd.Live{}
	sel := anyPorts(spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.2.0.0/16")})
	tab, err := spd.Compile([]spd.Rule{{Selector: sel, Action: spd.Protect, PolicyID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	l.Store(tab)
	out, in := saPair(t, s, 0x5151, true)
	st := sad.NewTable(sad.Options{})
	if err := st.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	snd := &countSender{}
	d, err := New(Config{TUN: fake, SAD: st, SPD: l, Workers: 1, NewSender: func() Sender { return snd }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch * (runs + 1) {
		if err := fake.Inject(ipv4Packet(200+i%1000, "10.1.0.2", "10.2.0.2", uint16(i))); err != nil {
			t.Fatal(err)
		}
	}
	e := <-d.outFree
	if a := testing.AllocsPerRun(runs, func() {
		n, err := fake.Read(e.bufs, e.sizes, tun.Headroom)
		if err != nil || n != batch {
			t.Fatalf("read %d: %v", n, err)
		}
		d.classify(e, n, d.cfg.SPD)
		e.sealAll()
		d.sendBatch(e, snd)
	}); a != 0 {
		t.Fatalf("outbound: %v allocations per batch of %d", a, batch)
	}
	if snd.pkts != batch*(runs+1) {
		t.Fatalf("sent %d packets", snd.pkts)
	}

	// Inbound: the receiving dataplane, with the packets the sender built.
	rt := sad.NewTable(sad.Options{})
	if err := rt.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	nt := &nullTUN{Device: tun.NewFake("in", 1400, batch, 1)}
	rd, err := New(Config{TUN: nt, SAD: rt, SPD: &spd.Live{}, Workers: 1, InBatch: batch, NewSender: func() Sender { return snd }})
	if err != nil {
		t.Fatal(err)
	}
	rd.started.Store(true) // drive it by hand, no goroutines
	// Each run seals a fresh batch (new sequence numbers) into
	// conn-style receive buffers, then runs the inbound path on it.
	pkts := make([]conn.ESPPacket, batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, conn.ReadOffset+2048)
	}
	work := make([]byte, tun.Headroom+2048)
	for _, tc := range []struct {
		name   string
		inner  []byte
		worker bool // the batch is above inlineCryptoBytes
	}{
		{"small packets, opened inline", ipv4HeaderOnly[:], false},
		{"large packets, opened by a worker", ipv4Packet(1000, "10.1.0.2", "10.2.0.2", 1), true},
	} {
		if a := testing.AllocsPerRun(runs, func() {
			for i := range pkts {
				copy(work[tun.Headroom:], tc.inner)
				_, p, r := Seal(out, work, tun.Headroom, len(tc.inner))
				if r != sad.NotDropped {
					t.Fatal(r)
				}
				pkts[i].Off, pkts[i].Len = conn.ReadOffset, copy(pkts[i].Buf[conn.ReadOffset:], p)
			}
			rd.HandleESP(pkts)
			if runQueuedOpen(rd) != tc.worker {
				t.Fatalf("%s: a worker job queued: %v", tc.name, !tc.worker)
			}
			ie := <-rd.inQ
			rd.writeBatch(ie)
			rd.inFree <- ie
		}); a != 0 {
			t.Fatalf("inbound, %s: %v allocations per batch of %d", tc.name, a, batch)
		}
	}
	if nt.written != 2*batch*(runs+1) {
		t.Fatalf("written %d packets, drops %v", nt.written, rd.Stats().Drops)
	}
}

// runQueuedOpen runs the crypto job HandleESP queued for a batch too large
// to open inline (inlineCryptoBytes), if it queued one, and says whether
// it did.
func runQueuedOpen(d *Dataplane) bool {
	select {
	case job := <-d.work:
		job()
		return true
	default:
		return false
	}
}

// ipv4HeaderOnly is a 20-byte IPv4 packet 10.1.0.2 -> 10.2.0.2 (protocol 0).
var ipv4HeaderOnly = [20]byte{0x45, 0, 0, 20, 0, 1, 0, 0, 64, 0, 0, 0, 10, 1, 0, 2, 10, 2, 0, 2}

func skipUnderRace(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items)")
	}
}
