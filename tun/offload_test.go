package tun

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

// refSum is RFC 1071 written the slow, obvious way, independent of
// internal/checksum.
func refSum(b []byte, sum uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return sum
}

// refL4Checksum is the checksum a TCP/UDP packet pkt must carry.
func refL4Checksum(pkt []byte, iphLen int, proto uint8) uint16 {
	isV6 := pkt[0]>>4 == 6
	src, dst := header.Addrs(pkt, isV6)
	l4 := pkt[iphLen:]
	sum := refSum(src, 0)
	sum = refSum(dst, sum)
	sum += uint32(proto) + uint32(len(l4))
	return ^uint16(refSum(l4, sum))
}

func refL4Valid(pkt []byte, iphLen int, proto uint8) bool {
	isV6 := pkt[0]>>4 == 6
	src, dst := header.Addrs(pkt, isV6)
	l4 := pkt[iphLen:]
	sum := refSum(src, 0)
	sum = refSum(dst, sum)
	sum += uint32(proto) + uint32(len(l4))
	return refSum(l4, sum) == 0xffff
}

// pktSpec describes a test packet.
type pktSpec struct {
	v6       bool
	proto    uint8
	src, dst byte // last byte of the addresses
	sport    uint16
	seq, ack uint32
	flags    uint8
	window   uint16
	id       uint16
	ttl      uint8
	options  []byte // TCP options (multiple of 4)
	payload  []byte
	badCsum  bool
}

func (s pktSpec) build() []byte {
	iph := 20
	if s.v6 {
		iph = 40
	}
	l4h := 8
	if s.proto == header.ProtoTCP {
		l4h = 20 + len(s.options)
	}
	total := iph + l4h + len(s.payload)
	p := make([]byte, total)
	ttl := s.ttl
	if ttl == 0 {
		ttl = 64
	}
	if s.v6 {
		p[0] = 0x60
		binary.BigEndian.PutUint16(p[4:], uint16(total-40))
		p[6], p[7] = s.proto, ttl
		p[8], p[23] = 0xfd, s.src
		p[24], p[39] = 0xfd, s.dst
	} else {
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(total))
		binary.BigEndian.PutUint16(p[4:], s.id)
		p[6] = 0x40 // DF
		p[8], p[9] = ttl, s.proto
		p[12], p[15] = 10, s.src
		p[16], p[19] = 10, s.dst
		binary.BigEndian.PutUint16(p[10:], ^uint16(refSum(p[:20], 0)))
	}
	l4 := p[iph:]
	binary.BigEndian.PutUint16(l4[0:], s.sport)
	binary.BigEndian.PutUint16(l4[2:], 5201)
	csumAt := 6
	if s.proto == header.ProtoTCP {
		binary.BigEndian.PutUint32(l4[4:], s.seq)
		binary.BigEndian.PutUint32(l4[8:], s.ack)
		l4[12] = byte(l4h/4) << 4
		l4[13] = s.flags
		binary.BigEndian.PutUint16(l4[14:], s.window)
		copy(l4[20:], s.options)
		csumAt = 16
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	copy(l4[l4h:], s.payload)
	c := refL4Checksum(p, iph, s.proto)
	if s.badCsum {
		c ^= 0x0100
	}
	binary.BigEndian.PutUint16(l4[csumAt:], c)
	return p
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// tcpStream returns n consecutive data segments of one flow.
func tcpStream(v6 bool, n, mss int, seq uint32) []pktSpec {
	var out []pktSpec
	for i := range n {
		out = append(out, pktSpec{v6: v6, proto: header.ProtoTCP, src: 1, dst: 2, sport: 40000,
			seq: seq + uint32(i*mss), ack: 777, flags: header.TCPFlagACK, window: 500, id: uint16(100 + i),
			options: []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}, payload: payload(mss, byte(i))})
	}
	return out
}

// batch lays packets out as the dataplane hands them to Write: each at
// offset in its own buffer.
func batch(specs []pktSpec, offset int) [][]byte {
	bufs := make([][]byte, len(specs))
	for i, s := range specs {
		p := s.build()
		bufs[i] = append(make([]byte, offset), p...)
	}
	return bufs
}

// written is what a coalesced batch turns into: the byte stream of each
// write (virtio header included), as the kernel would receive it.
func written(t testing.TB, c *coalescer, bufs [][]byte, offset int) [][]byte {
	t.Helper()
	c.plan(bufs, offset)
	var out [][]byte
	for i := range c.pkts {
		pieces, n := c.frame(bufs, offset, i, nil)
		if n > 0 {
			out = append(out, bytes.Join(pieces, nil))
		}
	}
	return out
}

// resegment plays the kernel's GSO on what was written: it completes the
// partial checksum of a super-packet the way the kernel would and cuts it
// with the segmenter, so a write can be compared with the packets that
// went in.
func resegment(t *testing.T, w []byte) [][]byte {
	t.Helper()
	var s segmenter
	if err := s.load(w); err != nil {
		t.Fatalf("load written packet: %v", err)
	}
	count, size := 1, len(s.pkt)
	if s.gso {
		count = (len(s.pkt) - s.hdrLen + s.gsoSize - 1) / s.gsoSize
		size = s.hdrLen + s.gsoSize
	}
	bufs := make([][]byte, count)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	sizes := make([]int, count)
	n, err := s.fill(bufs, sizes, 0)
	if err != nil || s.pending() {
		t.Fatalf("fill: %d, %v, pending %v", n, err, s.pending())
	}
	out := make([][]byte, n)
	for i := range n {
		out[i] = bufs[i][:sizes[i]]
	}
	return out
}

func TestCoalesceTCPStreamRoundTrip(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		t.Run(fmt.Sprint("v6=", v6), func(t *testing.T) {
			specs := tcpStream(v6, 20, 1348, 1000)
			specs[19].payload = payload(500, 9) // a short last segment
			specs[19].flags |= header.TCPFlagPSH
			var want [][]byte
			for _, s := range specs {
				want = append(want, s.build())
			}
			c := coalescer{udp: true}
			w := written(t, &c, batch(specs, 32), 32)
			if len(w) != 1 {
				t.Fatalf("%d writes, want 1 super-packet", len(w))
			}
			var h virtioHdr
			h.decode(w[0])
			wantType := uint8(gsoTCPv4)
			iph := 20
			if v6 {
				wantType, iph = gsoTCPv6, 40
			}
			if h.gsoType != wantType || h.gsoSize != 1348 || h.flags != vnetFlagNeedsCsum ||
				int(h.csumStart) != iph || h.csumOffset != 16 || int(h.hdrLen) != iph+32 {
				t.Fatalf("virtio header %+v", h)
			}
			super := w[0][VirtioNetHdrLen:]
			if len(super) != iph+32+19*1348+500 {
				t.Fatalf("super-packet %d bytes", len(super))
			}
			if !v6 && ^uint16(refSum(super[:20], 0)) != 0 {
				t.Fatal("IPv4 header checksum of the super-packet is wrong")
			}
			got := resegment(t, w[0])
			if len(got) != len(want) {
				t.Fatalf("resegmented into %d, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("segment %d differs from the packet that went in:\n got %x\nwant %x", i, got[i][:60], want[i][:60])
				}
			}
		})
	}
}

func TestCoalesceUDP(t *testing.T) {
	var specs []pktSpec
	for i := range 10 {
		specs = append(specs, pktSpec{proto: header.ProtoUDP, src: 1, dst: 2, sport: 999, id: uint16(i), payload: payload(100, byte(i))})
	}
	specs[9].payload = payload(40, 1)
	c := coalescer{udp: true}
	w := written(t, &c, batch(specs, 16), 16)
	if len(w) != 1 {
		t.Fatalf("%d writes, want 1", len(w))
	}
	got := resegment(t, w[0])
	for i, s := range specs {
		if want := s.build(); !bytes.Equal(got[i], want) {
			t.Fatalf("datagram %d:\n got %x\nwant %x", i, got[i], want)
		}
	}
	// Without kernel support for UDP GSO, datagrams go one by one.
	c = coalescer{udp: false}
	if w := written(t, &c, batch(specs, 16), 16); len(w) != 10 {
		t.Fatalf("%d writes without UDP GSO, want 10", len(w))
	}
}

// flowOf names the flow of a written packet (or super-packet).
func flowOf(p []byte) string {
	if p[0]>>4 == 6 {
		return fmt.Sprintf("%x>%x %d %x", p[8:24], p[24:40], p[6], p[40:44])
	}
	return fmt.Sprintf("%x>%x %d %x", p[12:16], p[16:20], p[9], p[20:24])
}

// checkFlowOrder checks that per flow the packets came out (got) in the
// order they went in (in), unchanged but for what normalized clears.
func checkFlowOrder(t *testing.T, in, got [][]byte) {
	t.Helper()
	byFlow := map[string][][]byte{}
	for _, p := range in {
		byFlow[flowOf(p)] = append(byFlow[flowOf(p)], p)
	}
	for _, p := range got {
		f := flowOf(p)
		if len(byFlow[f]) == 0 || !bytes.Equal(normalized(byFlow[f][0]), normalized(p)) {
			t.Fatalf("flow %s: packet out of order or changed: %x", f, p[:min(len(p), 48)])
		}
		byFlow[f] = byFlow[f][1:]
	}
}

// expand turns what was written back into the packets that went in, in
// write order.
func expand(t *testing.T, w [][]byte) [][]byte {
	var out [][]byte
	for _, x := range w {
		var h virtioHdr
		h.decode(x)
		if h.gsoType == gsoNone {
			if h != (virtioHdr{}) {
				t.Fatalf("single packet written with virtio header %+v", h)
			}
			out = append(out, x[VirtioNetHdrLen:])
			continue
		}
		out = append(out, resegment(t, x)...)
	}
	return out
}

func TestCoalesceRules(t *testing.T) {
	base := func() []pktSpec { return tcpStream(false, 6, 1000, 5000) }
	cases := []struct {
		name   string
		mutate func(s []pktSpec) []pktSpec
		writes int
	}{
		{"in order", func(s []pktSpec) []pktSpec { return s }, 1},
		{"ack changes", func(s []pktSpec) []pktSpec { s[3].ack++; return s }, 3},
		{"window changes", func(s []pktSpec) []pktSpec { s[3].window++; return s }, 3},
		{"options change", func(s []pktSpec) []pktSpec { s[3].options = []byte{1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 2}; return s }, 3},
		{"ttl changes", func(s []pktSpec) []pktSpec { s[3].ttl = 9; return s }, 3},
		{"gap in sequence", func(s []pktSpec) []pktSpec { s[3].seq += 1; s[4].seq += 1; s[5].seq += 1; return s }, 2},
		{"reordered", func(s []pktSpec) []pktSpec { s[2], s[3] = s[3], s[2]; return s }, 4},
		{"PSH ends a group", func(s []pktSpec) []pktSpec { s[2].flags |= header.TCPFlagPSH; return s }, 2},
		{"short segment ends a group", func(s []pktSpec) []pktSpec {
			s[2].payload = payload(10, 1)
			for i := 3; i < 6; i++ {
				s[i].seq = s[2].seq + 10 + uint32(i-3)*1000
			}
			return s
		}, 2},
		{"larger segment cannot follow", func(s []pktSpec) []pktSpec { s[5].payload = payload(1200, 1); return s }, 2},
		{"FIN is written alone, in its place", func(s []pktSpec) []pktSpec {
			s[5].flags |= header.TCPFlagFIN
			return s
		}, 2},
		{"pure ACK in the middle", func(s []pktSpec) []pktSpec {
			ack := s[3]
			ack.payload = nil
			return append(s[:3:3], append([]pktSpec{ack}, s[3:]...)...)
		}, 3},
		{"bad checksum of a member", func(s []pktSpec) []pktSpec { s[3].badCsum = true; return s }, 3},
		{"bad checksum of the head", func(s []pktSpec) []pktSpec { s[0].badCsum = true; return s }, 2},
		{"another flow in between", func(s []pktSpec) []pktSpec {
			o := s[2]
			o.sport = 1
			return append(s[:3:3], append([]pktSpec{o}, s[3:]...)...)
		}, 2},
		{"SYN", func(s []pktSpec) []pktSpec { s[0].flags = header.TCPFlagSYN; return s }, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			specs := tc.mutate(base())
			var in [][]byte
			for _, s := range specs {
				in = append(in, s.build())
			}
			c := coalescer{udp: true}
			w := written(t, &c, batch(specs, 20), 20)
			if len(w) != tc.writes {
				t.Errorf("%d writes, want %d", len(w), tc.writes)
			}
			got := expand(t, w)
			if len(got) != len(in) {
				t.Fatalf("%d packets out, %d in", len(got), len(in))
			}
			// A bad checksum stays bad: the kernel drops the packet.
			checkFlowOrder(t, in, got)
		})
	}
}

// TestCoalesceRandomBatches checks on random mixes of flows, losses and
// reordering that coalescing never reorders or changes the packets of a
// flow and merges only what is valid.
func TestCoalesceRandomBatches(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	c := coalescer{udp: true}
	merged := 0
	for range 300 {
		var specs []pktSpec
		seqs := map[uint16]uint32{}
		ids := map[uint16]uint16{}
		for range 1 + r.IntN(128) {
			flow := uint16(r.IntN(4))
			mss := 200 + int(flow)*100
			s := pktSpec{v6: flow%2 == 1, proto: header.ProtoTCP, src: 1, dst: 2, sport: 1000 + flow, id: ids[flow],
				seq: seqs[flow], ack: 1, flags: header.TCPFlagACK, payload: payload(mss, byte(r.IntN(256)))}
			ids[flow]++
			switch r.IntN(12) {
			case 0:
				s.proto = header.ProtoUDP
			case 1:
				s.payload = s.payload[:r.IntN(mss)]
			case 2:
				s.flags |= header.TCPFlagPSH
			case 3:
				s.seq += 7 // a gap
			case 4:
				s.badCsum = true
			}
			seqs[flow] = s.seq + uint32(len(s.payload))
			specs = append(specs, s)
		}
		var in [][]byte
		for _, s := range specs {
			in = append(in, s.build())
		}
		w := written(t, &c, batch(specs, 10), 10)
		merged += len(in) - len(w)
		got := expand(t, w)
		if len(got) != len(in) {
			t.Fatalf("%d packets out, %d in", len(got), len(in))
		}
		checkFlowOrder(t, in, got)
		for i, p := range c.pkts {
			if p.role != groHead || c.groups[p.group].segs == 1 {
				continue
			}
			gr := &c.groups[p.group]
			for j := i; j >= 0; j = c.pkts[j].next {
				if !refL4Valid(in[j], gr.iphLen, gr.proto) {
					t.Fatalf("packet %d with a bad checksum was merged", j)
				}
			}
		}
	}
	if merged == 0 {
		t.Fatal("nothing was ever merged")
	}
}

func TestCoalesceLimits(t *testing.T) {
	// 100 segments of 1000 bytes: at most 65535 bytes and 64 segments each.
	specs := tcpStream(false, 100, 1000, 1)
	c := coalescer{udp: true}
	w := written(t, &c, batch(specs, 16), 16)
	total := 0
	for _, x := range w {
		if len(x)-VirtioNetHdrLen > maxIPLen {
			t.Fatalf("super-packet of %d bytes", len(x)-VirtioNetHdrLen)
		}
		total += len(resegment(t, x))
	}
	if total != 100 || len(w) != 2 {
		t.Fatalf("%d writes of %d packets, want 2 of 100", len(w), total)
	}
	udp := make([]pktSpec, 100)
	for i := range udp {
		udp[i] = pktSpec{proto: header.ProtoUDP, src: 1, dst: 2, sport: 7, payload: payload(20, byte(i))}
	}
	w = written(t, &c, batch(udp, 16), 16)
	if len(w) != 2 || len(resegment(t, w[0])) != maxSegments {
		t.Fatalf("%d writes, first of %d segments; want 2, %d", len(w), len(resegment(t, w[0])), maxSegments)
	}
}

func gsoRead(h virtioHdr, pkt []byte) []byte {
	b := make([]byte, VirtioNetHdrLen, VirtioNetHdrLen+len(pkt))
	h.encode(b)
	return append(b, pkt...)
}

func TestSegmentContinuesAcrossReads(t *testing.T) {
	// A 30-segment super-packet read with batches of 8 buffers.
	specs := tcpStream(true, 30, 1200, 42)
	var want [][]byte
	for _, s := range specs {
		want = append(want, s.build())
	}
	c := coalescer{}
	w := written(t, &c, batch(specs, 10), 10)
	if len(w) != 1 {
		t.Fatalf("%d writes", len(w))
	}
	var s segmenter
	if err := s.load(w[0]); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	for s.pending() {
		bufs := make([][]byte, 8)
		for i := range bufs {
			bufs[i] = make([]byte, 128+1500)
		}
		sizes := make([]int, 8)
		n, err := s.fill(bufs, sizes, 128)
		if err != nil || n == 0 {
			t.Fatalf("fill: %d, %v", n, err)
		}
		for i := range n {
			got = append(got, bufs[i][128:128+sizes[i]])
		}
	}
	if len(got) != 30 {
		t.Fatalf("%d segments, want 30", len(got))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("segment %d differs", i)
		}
	}
}

func TestSegmentChecksumOnly(t *testing.T) {
	// Not segmented, checksum partial: the field holds the pseudo-header
	// sum and we complete it.
	p := pktSpec{proto: header.ProtoUDP, src: 1, dst: 2, sport: 53, payload: payload(77, 3)}.build()
	want := append([]byte(nil), p...)
	src, dst := header.Addrs(p, false)
	pseudo := refSum(src, 0)
	pseudo = refSum(dst, pseudo) + header.ProtoUDP + uint32(len(p)-20)
	binary.BigEndian.PutUint16(p[26:], uint16(refSum(nil, pseudo)))
	var s segmenter
	if err := s.load(gsoRead(virtioHdr{flags: vnetFlagNeedsCsum, csumStart: 20, csumOffset: 6}, p)); err != nil {
		t.Fatal(err)
	}
	bufs, sizes := [][]byte{make([]byte, 200)}, []int{0}
	if n, err := s.fill(bufs, sizes, 64); n != 1 || err != nil {
		t.Fatalf("fill: %d, %v", n, err)
	}
	if got := bufs[0][64 : 64+sizes[0]]; !bytes.Equal(got, want) {
		t.Fatalf("got %x\nwant %x", got, want)
	}
	// A packet too big for the buffer is an error, not a panic.
	if err := s.load(gsoRead(virtioHdr{}, make([]byte, 300))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.fill(bufs, sizes, 64); err == nil {
		t.Fatal("a 300-byte packet fit a 136-byte buffer")
	}
}

func TestSegmentMalformed(t *testing.T) {
	good := tcpStream(false, 1, 3000, 1)[0].build()
	cases := map[string]func() []byte{
		"short": func() []byte { return []byte{1, 2, 3} },
		"empty": func() []byte { return gsoRead(virtioHdr{}, nil) },
		"unknown GSO type": func() []byte {
			return gsoRead(virtioHdr{gsoType: 3, gsoSize: 1000, csumStart: 20, csumOffset: 16}, good)
		},
		"v6 type on v4": func() []byte {
			return gsoRead(virtioHdr{gsoType: gsoTCPv6, gsoSize: 1000, csumStart: 20, csumOffset: 16}, good)
		},
		"zero GSO size": func() []byte { return gsoRead(virtioHdr{gsoType: gsoTCPv4, csumStart: 20, csumOffset: 16}, good) },
		"csum_start": func() []byte {
			return gsoRead(virtioHdr{gsoType: gsoTCPv4, gsoSize: 1000, csumStart: 24, csumOffset: 16}, good)
		},
		"csum_offset": func() []byte {
			return gsoRead(virtioHdr{gsoType: gsoTCPv4, gsoSize: 1000, csumStart: 20, csumOffset: 6}, good)
		},
		"checksum outside": func() []byte {
			return gsoRead(virtioHdr{flags: vnetFlagNeedsCsum, csumStart: 20, csumOffset: 5000}, good)
		},
		"headers only": func() []byte {
			return gsoRead(virtioHdr{gsoType: gsoTCPv4, gsoSize: 1000, csumStart: 20, csumOffset: 16}, good[:40])
		},
	}
	for name, in := range cases {
		var s segmenter
		if err := s.load(in()); !errors.Is(err, errMalformedOffload) {
			t.Errorf("%s: %v, want errMalformedOffload", name, err)
		}
		if s.pending() {
			t.Errorf("%s: left pending", name)
		}
	}
}

// FuzzSegmenter feeds arbitrary reads to the segmenter: errors are fine,
// panics and oversized segments are not.
func FuzzSegmenter(f *testing.F) {
	c := coalescer{}
	f.Add(written(f, &c, batch(tcpStream(false, 3, 500, 1), 10), 10)[0])
	f.Add(gsoRead(virtioHdr{flags: vnetFlagNeedsCsum, csumStart: 20, csumOffset: 6}, pktSpec{proto: header.ProtoUDP, payload: []byte{1}}.build()))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s segmenter
		if s.load(in) != nil {
			return
		}
		out := make([][]byte, 16)
		for i := range out {
			out[i] = make([]byte, 2000)
		}
		sizes := make([]int, 16)
		for range 100 {
			n, err := s.fill(out, sizes, 100)
			for i := range n {
				if sizes[i] > 1900 {
					t.Fatalf("segment of %d bytes", sizes[i])
				}
			}
			if err != nil || !s.pending() {
				return
			}
		}
	})
}

// normalized clears what coalescing may legitimately change in an IPv4
// packet with DF set: the ID (segmenting numbers the packets) and with it
// the header checksum.
func normalized(p []byte) []byte {
	p = append([]byte(nil), p...)
	if len(p) >= 20 && p[0]>>4 == 4 && p[6]&0x40 != 0 {
		p[4], p[5], p[10], p[11] = 0, 0, 0, 0
	}
	return p
}

// FuzzCoalescer feeds arbitrary packets to the coalescer: whatever it
// merges must resegment into exactly the packets that went in.
func FuzzCoalescer(f *testing.F) {
	var seed []byte
	for _, s := range tcpStream(false, 3, 40, 1) {
		p := s.build()
		seed = append(append(seed, byte(len(p))), p...)
	}
	f.Add(seed)
	f.Fuzz(func(t *testing.T, in []byte) {
		var pkts [][]byte
		for len(in) > 0 {
			n := min(int(in[0]), len(in)-1)
			pkts = append(pkts, append(make([]byte, 12), in[1:1+n]...))
			in = in[1+n:]
		}
		orig := make([][]byte, len(pkts))
		for i, p := range pkts {
			orig[i] = append([]byte(nil), p[12:]...)
		}
		c := coalescer{udp: true}
		w := written(t, &c, pkts, 12)
		k := 0
		for i := range c.pkts {
			p := &c.pkts[i]
			if p.role == groMember {
				continue
			}
			x := w[k]
			k++
			var h virtioHdr
			h.decode(x)
			if h.gsoType == gsoNone {
				if !bytes.Equal(x[VirtioNetHdrLen:], orig[i]) {
					t.Fatalf("single packet %d changed", i)
				}
				continue
			}
			j := i
			for _, seg := range resegment(t, x) {
				if j < 0 || !bytes.Equal(normalized(seg), normalized(orig[j])) {
					t.Fatalf("packet %d changed by coalescing:\n got %x\nwant %x", j, seg, orig[max(j, 0)])
				}
				j = c.pkts[j].next
			}
			if j != -1 {
				t.Fatalf("group of packet %d resegmented short", i)
			}
		}
	})
}

// restoreHeaders copies the first bytes of each packet back from orig:
// coalescing and segmenting rewrite headers (never payloads) in place, and
// a benchmark must hand every round the same input.
func restoreHeaders(bufs, orig [][]byte, offset int) {
	for i := range bufs {
		copy(bufs[i][offset:offset+min(128, len(orig[i]))], orig[i])
	}
}

// BenchmarkSegment cuts 64 KiB-class TSO/USO super-packets into 1500-byte
// packets, as Read does for an application's burst.
func BenchmarkSegment(b *testing.B) {
	for _, c := range []struct {
		name string
		v6   bool
		mss  int
		udp  bool
	}{{"tcp4", false, 1448, false}, {"tcp6", true, 1428, false}, {"udp4", false, 1472, true}} {
		b.Run(c.name, func(b *testing.B) {
			specs := tcpStream(c.v6, 44, c.mss, 1)
			if c.udp {
				for i := range specs {
					specs[i] = pktSpec{proto: header.ProtoUDP, src: 1, dst: 2, sport: 999, payload: payload(c.mss, byte(i))}
				}
			}
			co := coalescer{udp: true}
			w := written(b, &co, batch(specs, 16), 16)
			if len(w) != 1 {
				b.Fatalf("%d writes, want one super-packet", len(w))
			}
			in := w[0]
			orig := [][]byte{append([]byte(nil), in...)}
			bufs := make([][]byte, 64)
			for i := range bufs {
				bufs[i] = make([]byte, Headroom+1500+Tailroom)
			}
			sizes := make([]int, len(bufs))
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				restoreHeaders([][]byte{in}, orig, 0)
				var s segmenter
				if err := s.load(in); err != nil {
					b.Fatal(err)
				}
				if n, err := s.fill(bufs, sizes, Headroom); n != len(specs) || err != nil {
					b.Fatalf("fill: %d, %v", n, err)
				}
			}
		})
	}
}

// BenchmarkCoalesce plans and frames a batch of 48 packets as Write does:
// one TCP flow (merged into one super-packet of 64 KB), and four
// interleaved flows.
func BenchmarkCoalesce(b *testing.B) {
	for _, c := range []struct {
		name  string
		flows int
		v6    bool
	}{{"tcp4-1flow", 1, false}, {"tcp6-1flow", 1, true}, {"tcp4-4flows", 4, false}} {
		b.Run(c.name, func(b *testing.B) {
			var specs []pktSpec
			streams := make([][]pktSpec, c.flows)
			for f := range streams {
				streams[f] = tcpStream(c.v6, 48/c.flows, 1348, uint32(f)<<20)
				for i := range streams[f] {
					streams[f][i].sport += uint16(f)
				}
			}
			for i := range 48 / c.flows {
				for f := range streams {
					specs = append(specs, streams[f][i])
				}
			}
			const offset = 16
			bufs := batch(specs, offset)
			orig := make([][]byte, len(bufs))
			for i := range bufs {
				orig[i] = append([]byte(nil), bufs[i][offset:]...)
			}
			co := coalescer{udp: true}
			pieces := make([][]byte, 0, len(bufs))
			b.SetBytes(int64(len(bufs) * 1348))
			b.ReportAllocs()
			for b.Loop() {
				restoreHeaders(bufs, orig, offset)
				co.plan(bufs, offset)
				writes := 0
				for i := range co.pkts {
					var n int
					if pieces, n = co.frame(bufs, offset, i, pieces[:0]); n > 0 {
						writes++
					}
				}
				if writes != c.flows {
					b.Fatalf("%d writes, want %d", writes, c.flows)
				}
			}
		})
	}
}
