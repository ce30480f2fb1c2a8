package spd

import (
	"encoding/binary"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

// --- packet builders ------------------------------------------------------

type pktSpec struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16 // for ICMP: sport = type<<8|code
	frag         bool   // non-first fragment
	ext6         []byte // IPv6 extension header types to insert before proto
}

func (p pktSpec) l4() []byte {
	switch p.proto {
	case header.ProtoTCP:
		b := make([]byte, 20)
		binary.BigEndian.PutUint16(b[0:], p.sport)
		binary.BigEndian.PutUint16(b[2:], p.dport)
		b[12] = 5 << 4
		return b
	case header.ProtoUDP, header.ProtoSCTP, header.ProtoUDPLite, header.ProtoDCCP:
		b := make([]byte, 12)
		binary.BigEndian.PutUint16(b[0:], p.sport)
		binary.BigEndian.PutUint16(b[2:], p.dport)
		return b
	case header.ProtoICMP, header.ProtoICMPv6:
		b := make([]byte, 8)
		binary.BigEndian.PutUint16(b[0:], p.sport)
		return b
	}
	return make([]byte, 16)
}

func (p pktSpec) bytes() []byte {
	l4 := p.l4()
	if p.src.Is4() {
		b := make([]byte, 20, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(20+len(l4)))
		if p.frag {
			binary.BigEndian.PutUint16(b[6:], 185)
		}
		b[8] = 64
		b[9] = p.proto
		s, d := p.src.As4(), p.dst.As4()
		copy(b[12:], s[:])
		copy(b[16:], d[:])
		return append(b, l4...)
	}
	var ext []byte
	hdrs := p.ext6
	if p.frag {
		hdrs = append(hdrs[:len(hdrs):len(hdrs)], header.ProtoFragment)
	}
	for i, h := range hdrs {
		next := p.proto
		if i+1 < len(hdrs) {
			next = hdrs[i+1]
		}
		switch h {
		case header.ProtoFragment:
			e := make([]byte, 8)
			e[0] = next
			if p.frag {
				binary.BigEndian.PutUint16(e[2:], 185<<3)
			}
			ext = append(ext, e...)
		case header.ProtoAH:
			e := make([]byte, 24) // (4+2)*4
			e[0], e[1] = next, 4
			ext = append(ext, e...)
		default:
			e := make([]byte, 16) // (1+1)*8
			e[0], e[1] = next, 1
			ext = append(ext, e...)
		}
	}
	payload := append(ext, l4...)
	if p.frag {
		payload = ext // non-first fragment carries no upper-layer header
	}
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6] = p.proto
	if len(hdrs) > 0 {
		b[6] = hdrs[0]
	}
	b[7] = 64
	s, d := p.src.As16(), p.dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

func sel(local, remote string, proto uint8, lp, rp PortRange) Selector {
	return Selector{Local: MustPrefixRange(local), Remote: MustPrefixRange(remote), Protocol: proto, LocalPorts: lp, RemotePorts: rp}
}

func mustCompile(t testing.TB, rules []Rule) *Table {
	t.Helper()
	tab, err := Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

var (
	a4 = netip.MustParseAddr
)

// --- table tests ----------------------------------------------------------

func TestOrderingAndProtocols(t *testing.T) {
	rules := []Rule{
		{Selector: sel("10.1.0.0/16", "10.2.0.0/16", 0, AllPorts, AllPorts), Action: Protect, PolicyID: 1},
		{Selector: sel("10.1.0.0/16", "10.2.0.0/16", header.ProtoTCP, AllPorts, Port(22)), Action: Bypass},
		{Selector: sel("10.1.0.0/16", "10.2.3.0/24", 0, AllPorts, AllPorts), Action: Protect, PolicyID: 3},
		{Selector: sel("10.1.0.0/16", "10.2.0.0/16", header.ProtoUDP, AllPorts, PortRange{5000, 5999}), Action: Drop},
		{Selector: sel("10.1.0.0/16", "10.2.0.0/16", header.ProtoICMP, PortRange{0x0800, 0x08ff}, AllPorts), Action: Trap, PolicyID: 9},
		{Selector: sel("0.0.0.0/0", "0.0.0.0/0", 0, AllPorts, AllPorts), Action: Bypass, Priority: 100},
		{Selector: sel("fd00:1::/64", "fd00:2::/64", header.ProtoICMPv6, AllPorts, AllPorts), Action: Protect, PolicyID: 6},
		{Selector: sel("fd00:1::/64", "fd00:2::/64", 0, AllPorts, AllPorts), Action: Protect, PolicyID: 7},
	}
	tab := mustCompile(t, rules)
	l, r := a4("10.1.0.5"), a4("10.2.9.9")
	for _, tc := range []struct {
		name    string
		p       pktSpec
		inbound bool
		act     Action
		pol     uint32
		st      Status
	}{
		{"tcp any port", pktSpec{src: l, dst: r, proto: header.ProtoTCP, sport: 40000, dport: 443}, false, Protect, 1, Matched},
		{"tcp ssh bypass", pktSpec{src: l, dst: r, proto: header.ProtoTCP, sport: 40000, dport: 22}, false, Bypass, 0, Matched},
		{"udp ssh not bypassed", pktSpec{src: l, dst: r, proto: header.ProtoUDP, sport: 40000, dport: 22}, false, Protect, 1, Matched},
		{"more specific subnet wins", pktSpec{src: l, dst: a4("10.2.3.4"), proto: header.ProtoTCP, sport: 1, dport: 22}, false, Protect, 3, Matched},
		{"udp range low", pktSpec{src: l, dst: r, proto: header.ProtoUDP, sport: 1, dport: 5000}, false, Drop, 0, Matched},
		{"udp range high", pktSpec{src: l, dst: r, proto: header.ProtoUDP, sport: 1, dport: 5999}, false, Drop, 0, Matched},
		{"udp above range", pktSpec{src: l, dst: r, proto: header.ProtoUDP, sport: 1, dport: 6000}, false, Protect, 1, Matched},
		{"icmp echo request trap", pktSpec{src: l, dst: r, proto: header.ProtoICMP, sport: 0x0800}, false, Trap, 9, Matched},
		{"icmp echo reply", pktSpec{src: l, dst: r, proto: header.ProtoICMP, sport: 0x0000}, false, Protect, 1, Matched},
		{"inbound reverses", pktSpec{src: r, dst: l, proto: header.ProtoTCP, sport: 22, dport: 40000}, true, Bypass, 0, Matched},
		{"outbound direction of inbound packet", pktSpec{src: r, dst: l, proto: header.ProtoTCP, sport: 22, dport: 40000}, false, Bypass, 0, Matched},
		{"catch-all by priority", pktSpec{src: a4("192.168.1.1"), dst: r, proto: header.ProtoTCP, sport: 1, dport: 2}, false, Bypass, 0, Matched},
		{"esp has no ports", pktSpec{src: l, dst: r, proto: header.ProtoESP}, false, Protect, 1, Matched},
		{"fragment has no ports", pktSpec{src: l, dst: r, proto: header.ProtoTCP, frag: true}, false, Protect, 1, Matched},
		{"v6 icmp", pktSpec{src: a4("fd00:1::1"), dst: a4("fd00:2::1"), proto: header.ProtoICMPv6, sport: 0x8000}, false, Protect, 6, Matched},
		{"v6 tcp behind ext headers", pktSpec{src: a4("fd00:1::1"), dst: a4("fd00:2::1"), proto: header.ProtoTCP, sport: 1, dport: 2, ext6: []byte{header.ProtoHopByHop, header.ProtoDestOpts, header.ProtoRouting, header.ProtoAH, header.ProtoFragment}}, false, Protect, 7, Matched},
		{"v6 icmp behind fragment header", pktSpec{src: a4("fd00:1::1"), dst: a4("fd00:2::1"), proto: header.ProtoICMPv6, sport: 0x8000, ext6: []byte{header.ProtoFragment}}, false, Protect, 6, Matched},
		{"v6 no match", pktSpec{src: a4("fd00:3::1"), dst: a4("fd00:2::1"), proto: header.ProtoTCP}, false, Drop, 0, NoMatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.p.bytes()
			var res Result
			if tc.inbound {
				res = tab.Inbound(b)
			} else {
				res = tab.Outbound(b)
			}
			if res.Action != tc.act || res.PolicyID != tc.pol || res.Status != tc.st {
				t.Fatalf("got %v/%d/%v, want %v/%d/%v", res.Action, res.PolicyID, res.Status, tc.act, tc.pol, tc.st)
			}
			if res.Status == Matched && tab.Rules()[res.Rule].Action != res.Action {
				t.Fatalf("Rule index %d does not point at the matching rule", res.Rule)
			}
		})
	}
}

func TestParseFields(t *testing.T) {
	var f Flow
	p := pktSpec{src: a4("10.0.0.1"), dst: a4("10.0.0.2"), proto: header.ProtoUDP, sport: 500, dport: 4500}
	if !f.Parse(p.bytes()) || !f.Is4 || f.Proto != header.ProtoUDP || !f.HasPorts || f.SrcPort != 500 || f.DstPort != 4500 ||
		f.SrcAddr() != p.src || f.DstAddr() != p.dst {
		t.Fatalf("v4 udp: %+v", f)
	}
	p = pktSpec{src: a4("2001:db8::1"), dst: a4("2001:db8::2"), proto: header.ProtoSCTP, sport: 7, dport: 9, ext6: []byte{header.ProtoHopByHop}}
	if !f.Parse(p.bytes()) || f.Is4 || f.Proto != header.ProtoSCTP || f.SrcPort != 7 || f.DstPort != 9 ||
		f.SrcAddr() != p.src || f.DstAddr() != p.dst {
		t.Fatalf("v6 sctp: %+v", f)
	}
	// Trailing bytes beyond the IP total length are ignored.
	b := append(pktSpec{src: a4("10.0.0.1"), dst: a4("10.0.0.2"), proto: header.ProtoTCP, sport: 1, dport: 2}.bytes(), 0xde, 0xad)
	if !f.Parse(b) || f.DstPort != 2 {
		t.Fatalf("trailing bytes: %+v", f)
	}
}

func TestMalformed(t *testing.T) {
	tab := mustCompile(t, []Rule{{Selector: sel("0.0.0.0/0", "0.0.0.0/0", 0, AllPorts, AllPorts), Action: Bypass},
		{Selector: sel("::/0", "::/0", 0, AllPorts, AllPorts), Action: Bypass}})
	good4 := pktSpec{src: a4("10.0.0.1"), dst: a4("10.0.0.2"), proto: header.ProtoTCP, sport: 1, dport: 2}.bytes()
	good6 := pktSpec{src: a4("fd00::1"), dst: a4("fd00::2"), proto: header.ProtoUDP, sport: 1, dport: 2, ext6: []byte{header.ProtoDestOpts}}.bytes()
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	cases := map[string][]byte{
		"empty":            nil,
		"version 5":        mut(good4, func(b []byte) []byte { b[0] = 0x55; return b }),
		"v4 short":         good4[:19],
		"v4 ihl 4":         mut(good4, func(b []byte) []byte { b[0] = 0x44; return b }),
		"v4 ihl too long":  mut(good4, func(b []byte) []byte { b[0] = 0x4f; binary.BigEndian.PutUint16(b[2:], 40); return b[:40] }),
		"v4 total > len":   mut(good4, func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 100); return b }),
		"v4 total < ihl":   mut(good4, func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 10); return b }),
		"v4 tcp truncated": mut(good4, func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 23); return b[:23] }),
		"v6 short":         good6[:39],
		"v6 payload > len": mut(good6, func(b []byte) []byte { return b[:len(b)-1] }),
		"v6 ext overruns":  mut(good6, func(b []byte) []byte { b[41] = 200; return b }),
		"v6 ext loop": func() []byte {
			b := pktSpec{src: a4("fd00::1"), dst: a4("fd00::2"), proto: header.ProtoUDP, sport: 1, dport: 2,
				ext6: []byte{0, 60, 60, 60, 60, 60, 60, 60, 60, 60}}.bytes()
			return b
		}(),
		"v6 udp truncated": mut(good6, func(b []byte) []byte {
			binary.BigEndian.PutUint16(b[4:], 16+3)
			return b[:40+16+3]
		}),
	}
	if tab.Outbound(good4).Status != Matched || tab.Outbound(good6).Status != Matched {
		t.Fatal("good packets do not match")
	}
	for name, b := range cases {
		for _, res := range []Result{tab.Outbound(b), tab.Inbound(b)} {
			if res.Status != Malformed || res.Action != Drop {
				t.Errorf("%s: %v/%v, want malformed drop", name, res.Status, res.Action)
			}
		}
	}
	// Every truncation of valid packets must be handled without panic.
	for _, b := range [][]byte{good4, good6} {
		for n := range b {
			tab.Outbound(b[:n])
		}
	}
}

func TestCompileErrors(t *testing.T) {
	good := sel("10.0.0.0/8", "10.0.0.0/8", 0, AllPorts, AllPorts)
	bad := []Selector{
		{Local: AddrRange{}, Remote: good.Remote, LocalPorts: AllPorts, RemotePorts: AllPorts},
		{Local: MustPrefixRange("fd00::/8"), Remote: good.Remote, LocalPorts: AllPorts, RemotePorts: AllPorts},
		{Local: AddrRange{a4("10.0.0.9"), a4("10.0.0.1")}, Remote: good.Remote, LocalPorts: AllPorts, RemotePorts: AllPorts},
		{Local: AddrRange{a4("10.0.0.1"), a4("fd00::1")}, Remote: good.Remote, LocalPorts: AllPorts, RemotePorts: AllPorts},
		{Local: good.Local, Remote: good.Remote, LocalPorts: PortRange{9, 1}, RemotePorts: AllPorts},
		{Local: AddrRange{a4("::ffff:10.0.0.1"), a4("::ffff:10.0.0.2")}, Remote: MustPrefixRange("::/0"), LocalPorts: AllPorts, RemotePorts: AllPorts},
	}
	for i, s := range bad {
		if _, err := Compile([]Rule{{Selector: s}}); err == nil {
			t.Errorf("bad selector %d accepted", i)
		}
	}
	if _, err := Compile([]Rule{{Selector: good, Action: 9}}); err == nil {
		t.Error("bad action accepted")
	}
}

func TestLiveEmpty(t *testing.T) {
	var l Live
	b := pktSpec{src: a4("10.0.0.1"), dst: a4("10.0.0.2"), proto: header.ProtoTCP}.bytes()
	if r := l.Load().Outbound(b); r.Status != NoMatch || r.Action != Drop {
		t.Fatalf("empty live table: %+v", r)
	}
	l.Store(mustCompile(t, []Rule{{Selector: sel("10.0.0.0/8", "10.0.0.0/8", 0, AllPorts, AllPorts), Action: Bypass}}))
	if r := l.Load().Outbound(b); r.Action != Bypass {
		t.Fatalf("after store: %+v", r)
	}
}

func TestPrefixRangeAndSpecificity(t *testing.T) {
	r := MustPrefixRange("10.1.2.3/16")
	if r.From != a4("10.1.0.0") || r.To != a4("10.1.255.255") {
		t.Fatalf("range %v", r)
	}
	r6 := MustPrefixRange("fd00::/70")
	if r6.To != a4("fd00::3ff:ffff:ffff:ffff") {
		t.Fatalf("range %v", r6)
	}
	for _, tc := range []struct {
		r    AddrRange
		bits int
	}{
		{MustPrefixRange("0.0.0.0/0"), 0},
		{MustPrefixRange("10.0.0.0/8"), 8},
		{MustPrefixRange("10.0.0.1/32"), 32},
		{AddrRange{a4("10.0.0.1"), a4("10.0.0.3")}, 30},
		{MustPrefixRange("::/0"), 0},
		{MustPrefixRange("fd00::/70"), 70},
		{MustPrefixRange("fd00::1/128"), 128},
	} {
		if got := fixedBits(tc.r); got != tc.bits {
			t.Errorf("fixedBits(%v) = %d, want %d", tc.r, got, tc.bits)
		}
	}
}

// --- randomized test against a slow reference ------------------------------

type refRule struct {
	Rule
	idx int
}

// refFixedBits counts address bits with big integers, independently of the
// u128 arithmetic under test.
func refFixedBits(r AddrRange) int {
	from := new(big.Int).SetBytes(r.From.AsSlice())
	to := new(big.Int).SetBytes(r.To.AsSlice())
	return r.From.BitLen() - new(big.Int).Sub(to, from).BitLen()
}

func refLess(a, b refRule) bool {
	if a.Priority != b.Priority {
		return a.Priority < b.Priority
	}
	ab := refFixedBits(a.Selector.Local) + refFixedBits(a.Selector.Remote)
	bb := refFixedBits(b.Selector.Local) + refFixedBits(b.Selector.Remote)
	if ab != bb {
		return ab > bb
	}
	if (a.Selector.Protocol != 0) != (b.Selector.Protocol != 0) {
		return a.Selector.Protocol != 0
	}
	full := func(p PortRange) int {
		if p.From == 0 && p.To == 65535 {
			return 0
		}
		return 1
	}
	ap := full(a.Selector.LocalPorts) + full(a.Selector.RemotePorts)
	bp := full(b.Selector.LocalPorts) + full(b.Selector.RemotePorts)
	if ap != bp {
		return ap > bp
	}
	return a.idx < b.idx
}

func inAddr(a netip.Addr, r AddrRange) bool {
	return a.Is4() == r.From.Is4() && r.From.Compare(a) <= 0 && a.Compare(r.To) <= 0
}

// refMatch is the reference: among all matching rules, the least by refLess.
func refMatch(rules []Rule, p pktSpec, inbound bool) (Rule, bool) {
	local, remote, lp, rp := p.src, p.dst, p.sport, p.dport
	if inbound {
		local, remote, lp, rp = remote, local, rp, lp
	}
	hasPorts := !p.frag
	switch p.proto {
	case header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP, header.ProtoUDPLite, header.ProtoDCCP:
	case header.ProtoICMP, header.ProtoICMPv6:
		lp, rp = p.sport, p.sport
		if (p.proto == header.ProtoICMP) != p.src.Is4() {
			hasPorts = false
		}
	default:
		hasPorts = false
	}
	var best refRule
	found := false
	for i, r := range rules {
		s := r.Selector
		if !inAddr(local, s.Local) || !inAddr(remote, s.Remote) {
			continue
		}
		if s.Protocol != 0 && s.Protocol != p.proto {
			continue
		}
		if hasPorts {
			if lp < s.LocalPorts.From || lp > s.LocalPorts.To || rp < s.RemotePorts.From || rp > s.RemotePorts.To {
				continue
			}
		} else if s.LocalPorts != AllPorts || s.RemotePorts != AllPorts {
			continue
		}
		c := refRule{r, i}
		if !found || refLess(c, best) {
			best, found = c, true
		}
	}
	return best.Rule, found
}

type gen struct{ *rand.Rand }

func (g gen) addr(is4 bool) netip.Addr {
	// A small space so that rules and packets overlap often.
	if is4 {
		return netip.AddrFrom4([4]byte{10, 0, byte(g.IntN(2)), byte(g.IntN(16))})
	}
	var b [16]byte
	b[0], b[7], b[14] = 0xfd, byte(g.IntN(2)), byte(g.IntN(2))
	b[15] = byte(g.IntN(16))
	return netip.AddrFrom16(b)
}

func (g gen) addrRange(is4 bool) AddrRange {
	a := g.addr(is4)
	switch g.IntN(4) {
	case 0: // a prefix of random length within the interesting bits
		bits := a.BitLen() - g.IntN(12)
		if g.IntN(8) == 0 {
			bits = 0
		}
		if !is4 && g.IntN(4) == 0 {
			bits = 60 + g.IntN(8) // a boundary in the high 64 bits
		}
		return PrefixRange(netip.PrefixFrom(a, bits))
	case 1:
		b := g.addr(is4)
		if b.Less(a) {
			a, b = b, a
		}
		return AddrRange{a, b}
	case 2:
		return AddrRange{a, a}
	}
	return PrefixRange(netip.PrefixFrom(a, a.BitLen()-4-g.IntN(6)))
}

var protos = []uint8{0, 0, header.ProtoTCP, header.ProtoUDP, header.ProtoICMP, header.ProtoICMPv6, header.ProtoSCTP, header.ProtoESP}

func (g gen) ports() PortRange {
	switch g.IntN(4) {
	case 0, 1:
		return AllPorts
	case 2:
		return Port(uint16(g.IntN(8)))
	}
	a, b := uint16(g.IntN(8)), uint16(g.IntN(8))
	if b < a {
		a, b = b, a
	}
	return PortRange{a, b}
}

func (g gen) rule(is4 bool) Rule {
	r := Rule{
		Selector: Selector{Local: g.addrRange(is4), Remote: g.addrRange(is4), Protocol: protos[g.IntN(len(protos))],
			LocalPorts: g.ports(), RemotePorts: g.ports()},
		Action:   Action(g.IntN(4)),
		PolicyID: uint32(g.IntN(1000)),
	}
	if g.IntN(5) == 0 {
		r.Priority = uint32(g.IntN(3))
	}
	return r
}

func (g gen) packet(is4 bool) pktSpec {
	p := pktSpec{src: g.addr(is4), dst: g.addr(is4), proto: protos[2+g.IntN(len(protos)-2)],
		sport: uint16(g.IntN(8)), dport: uint16(g.IntN(8)), frag: g.IntN(10) == 0}
	if p.proto == header.ProtoICMP || p.proto == header.ProtoICMPv6 {
		p.sport = uint16(g.IntN(4))<<8 | uint16(g.IntN(2))
		if g.IntN(2) == 0 {
			p.sport = uint16(g.IntN(8)) // small values so port ranges 0-7 can match
		}
	}
	if !is4 && g.IntN(3) == 0 {
		p.ext6 = []byte{header.ProtoHopByHop, header.ProtoDestOpts}[:1+g.IntN(2)]
	}
	return p
}

func TestRandomAgainstReference(t *testing.T) {
	defer func(old, oldLocal int) { indexThreshold, localIndexThreshold = old, oldLocal }(indexThreshold, localIndexThreshold)
	// Always index (both levels), the defaults, the remote index alone,
	// the local index from two candidates on, never index.
	for _, th := range [][2]int{{0, 0}, {16, 16}, {0, 1 << 30}, {0, 2}, {1 << 30, 0}} {
		indexThreshold, localIndexThreshold = th[0], th[1]
		t.Run(fmt.Sprintf("indexThreshold=%d/localIndexThreshold=%d", th[0], th[1]), testRandomAgainstReference)
	}
}

func testRandomAgainstReference(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	matched := 0
	for round := 0; round < 200; round++ {
		var rules []Rule
		for n := g.IntN(60); n > 0; n-- {
			rules = append(rules, g.rule(g.IntN(2) == 0))
		}
		tab := mustCompile(t, rules)
		for i := 0; i < 300; i++ {
			p := g.packet(g.IntN(2) == 0)
			inbound := g.IntN(2) == 0
			b := p.bytes()
			var got Result
			if inbound {
				got = tab.Inbound(b)
			} else {
				got = tab.Outbound(b)
			}
			want, ok := refMatch(rules, p, inbound)
			if !ok {
				if got.Status != NoMatch || got.Action != Drop {
					t.Fatalf("round %d: %+v inbound=%v: got %+v, reference: no match", round, p, inbound, got)
				}
				continue
			}
			matched++
			if got.Status != Matched || tab.Rules()[got.Rule] != want {
				t.Fatalf("round %d: %+v inbound=%v: got %+v (%+v), reference %+v", round, p, inbound, got,
					func() any {
						if got.Rule >= 0 {
							return tab.Rules()[got.Rule]
						}
						return nil
					}(), want)
			}
			if got.Action != want.Action || got.PolicyID != want.PolicyID {
				t.Fatalf("verdict fields do not follow the rule")
			}
		}
	}
	t.Logf("%d of 60000 lookups matched a rule", matched)
	if matched < 5000 {
		t.Fatalf("only %d of 60000 lookups matched a rule: the generator is too sparse to test much", matched)
	}
}

// TestIndexFallback: nested remote ranges would make the index quadratic;
// Compile must keep the scan then, and both forms must agree.
func TestIndexFallback(t *testing.T) {
	var rules []Rule
	for i := 0; i < 300; i++ {
		from := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		to := netip.AddrFrom4([4]byte{10, 255, 255 - byte(i>>8), 255 - byte(i)})
		rules = append(rules, Rule{Selector: Selector{Local: MustPrefixRange("0.0.0.0/0"), Remote: AddrRange{from, to},
			LocalPorts: AllPorts, RemotePorts: AllPorts}, Action: Protect, PolicyID: uint32(i), Priority: uint32(1000 - i)}) // narrowest first
	}
	tab := mustCompile(t, rules)
	if tab.ix4 != nil {
		t.Fatalf("index built with %d candidate entries for %d rules", len(tab.ix4.cand), len(rules))
	}
	// Fewer nested rules stay within the budget and get an index.
	small := mustCompile(t, rules[:40])
	if small.ix4 == nil {
		t.Fatal("no index for 40 rules")
	}
	g := gen{rand.New(rand.NewPCG(3, 4))}
	for i := 0; i < 2000; i++ {
		ps := pktSpec{src: a4("1.1.1.1"), dst: netip.AddrFrom4([4]byte{10, byte(g.IntN(256)), byte(g.IntN(2)), byte(g.IntN(256))}), proto: header.ProtoUDP}
		if i&1 == 0 {
			ps.dst = netip.AddrFrom4([4]byte{10, 255, 255 - byte(g.IntN(2)), 255 - byte(g.IntN(256))})
		}
		checkOutbound(t, small, rules[:40], ps)
		checkOutbound(t, tab, rules, ps)
	}
}

// checkOutbound compares tab's outbound verdict for ps with the reference
// scan of rules.
func checkOutbound(t *testing.T, tab *Table, rules []Rule, ps pktSpec) {
	t.Helper()
	want, ok := refMatch(rules, ps, false)
	got := tab.Outbound(ps.bytes())
	if !ok {
		if got.Status != NoMatch {
			t.Fatalf("%v→%v: got %+v, reference no match", ps.src, ps.dst, got)
		}
		return
	}
	if got.Status != Matched || got.PolicyID != want.PolicyID {
		t.Fatalf("%v→%v: got %+v, want policy %d", ps.src, ps.dst, got, want.PolicyID)
	}
}

// TestLocalIndexFallback: rules sharing one remote range whose local
// ranges nest would make the local index quadratic; Compile must scan the
// interval's candidates then, and agree with the reference either way.
func TestLocalIndexFallback(t *testing.T) {
	var rules []Rule
	for i := 0; i < 300; i++ {
		from := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		to := netip.AddrFrom4([4]byte{10, 255, 255 - byte(i>>8), 255 - byte(i)})
		rules = append(rules, Rule{Selector: Selector{Local: AddrRange{from, to}, Remote: MustPrefixRange("10.2.0.0/24"),
			LocalPorts: AllPorts, RemotePorts: AllPorts}, Action: Protect, PolicyID: uint32(i), Priority: uint32(1000 - i)})
	}
	tab := mustCompile(t, rules)
	if tab.ix4 == nil || tab.ix4.sub != nil {
		t.Fatalf("want a remote index without local indexes, got %+v", tab.ix4)
	}
	small := mustCompile(t, rules[:40])
	if small.ix4 == nil || small.ix4.sub == nil {
		t.Fatal("no local index for 40 rules sharing a remote range")
	}
	g := gen{rand.New(rand.NewPCG(9, 10))}
	for i := 0; i < 2000; i++ {
		ps := pktSpec{src: netip.AddrFrom4([4]byte{10, byte(g.IntN(256)), byte(g.IntN(2)), byte(g.IntN(256))}), dst: a4("10.2.0.9"), proto: header.ProtoUDP}
		if i&1 == 0 {
			ps.src = netip.AddrFrom4([4]byte{10, 255, 255 - byte(g.IntN(2)), 255 - byte(g.IntN(256))})
		}
		checkOutbound(t, small, rules[:40], ps)
		checkOutbound(t, tab, rules, ps)
	}
}

// TestSharedRemote: the initiator of bench/ikebench -idle (one active
// policy behind thousands of more specific idle ones to the same remote
// LAN), with a catch-all trap and port rules beside, as Compile and as a
// Set that loses and regains the idle rules: the verdicts are the
// reference's, and a packet of the active tunnel is tested against at
// most the few rules its local address falls into, not all of them.
func TestSharedRemote(t *testing.T) {
	const n = 2000
	rules := append(sharedRemoteRules(n),
		Rule{Selector: sel("10.0.0.0/8", "0.0.0.0/0", 0, AllPorts, AllPorts), Action: Trap, PolicyID: n},
		Rule{Selector: sel("10.64.0.0/16", "10.2.0.0/24", header.ProtoTCP, AllPorts, Port(22)), Action: Bypass, PolicyID: n + 1},
		Rule{Selector: sel("10.1.0.7/32", "10.2.0.0/25", header.ProtoUDP, Port(53), AllPorts), Action: Drop, PolicyID: n + 2})
	g := gen{rand.New(rand.NewPCG(11, 12))}
	packet := func() pktSpec {
		p := pktSpec{src: netip.AddrFrom4([4]byte{10, 64, byte(g.IntN(9)), byte(g.IntN(256))}), dst: netip.AddrFrom4([4]byte{10, 2, byte(g.IntN(2)), byte(g.IntN(256))}),
			proto: []uint8{header.ProtoTCP, header.ProtoUDP, header.ProtoICMP}[g.IntN(3)], sport: uint16(g.IntN(60)), dport: uint16(g.IntN(60))}
		if g.IntN(3) == 0 {
			p.src = netip.AddrFrom4([4]byte{10, 1, byte(g.IntN(2)), byte(g.IntN(16))})
		}
		return p
	}
	active := pktSpec{src: a4("10.1.0.5"), dst: a4("10.2.0.7"), proto: header.ProtoTCP, sport: 40000, dport: 5201}
	var f Flow
	if !f.Parse(active.bytes()) {
		t.Fatal("active packet does not parse")
	}
	tab := mustCompile(t, rules)
	for range 3000 {
		p := packet()
		inbound := g.IntN(4) == 0
		got := tab.Outbound(p.bytes())
		if inbound {
			got = tab.Inbound(p.bytes())
		}
		want, ok := refMatch(rules, p, inbound)
		if ok != (got.Status == Matched) || (ok && tab.Rules()[got.Rule] != want) {
			t.Fatalf("%+v inbound=%v: got %+v, reference %+v (%v)", p, inbound, got, want, ok)
		}
	}
	if c := tab.ix4.candidates(f.Dst, f.Src); len(c) > 2 {
		t.Errorf("compiled: the active packet has %d candidates", len(c))
	}

	s := NewSet()
	var rs []orderedRule
	for k, r := range rules {
		o := Order{Major: uint64(k)}
		if err := s.Add(r, o); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, orderedRule{r, o})
	}
	check := func(rs []orderedRule) {
		t.Helper()
		ref := rebuild(t, rs)
		tab := s.Table()
		for range 300 {
			p := packet()
			checkSetVerdict(t, tab, ref, p)
		}
		if c := s.v4.candidates(f.Dst, f.Src); s.v4.lookup(f.Dst).size() >= localIndexThreshold && len(c) > 2 {
			t.Errorf("set of %d rules: the active packet has %d candidates", len(rs), len(c))
		}
	}
	check(rs)
	// Remove idle rules in random order down to a few (the local index is
	// dropped below the threshold), then add them back (and it is rebuilt).
	others := append(rs[:1:1], rs[n:]...)
	idle := slices.Clone(rs[1:n])
	g.Shuffle(len(idle), func(i, j int) { idle[i], idle[j] = idle[j], idle[i] })
	for i := len(idle) - 1; i >= 5; i-- {
		if !s.Remove(idle[i].r, idle[i].o) {
			t.Fatal("Remove failed")
		}
		if i%400 == 0 || i < 30 {
			check(append(slices.Clone(others), idle[:i]...))
		}
	}
	if s.v4.lookup(f.Dst).local != nil {
		t.Error("local index kept below the threshold")
	}
	for _, r := range idle[5:] {
		if err := s.Add(r.r, r.o); err != nil {
			t.Fatal(err)
		}
	}
	check(append(others, idle...))
	if s.v4.lookup(f.Dst).local == nil {
		t.Error("no local index for the restored rules")
	}
	b := active.bytes()
	for _, tb := range []*Table{tab, s.Table()} {
		if allocs := testing.AllocsPerRun(1000, func() { tb.Outbound(b); tb.Inbound(b) }); allocs != 0 {
			t.Errorf("%v allocations per lookup", allocs)
		}
	}
}

// --- allocations and benchmarks ---------------------------------------------

func benchRules(n int) []Rule {
	// n site-to-site policies 10.i.0.0/16 -> 172.16.i.0/24, both families,
	// plus a few port rules, like a hub gateway's configuration.
	rules := make([]Rule, 0, n)
	for i := 0; i < n; i++ {
		var s Selector
		if i%2 == 0 {
			s = sel(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), fmt.Sprintf("172.16.%d.%d/32", i/256, i%256), 0, AllPorts, AllPorts)
		} else {
			s = sel(fmt.Sprintf("fd00:%x::/64", i), fmt.Sprintf("fd01:%x::/64", i), 0, AllPorts, AllPorts)
		}
		if i%10 == 3 {
			s.Protocol, s.RemotePorts = header.ProtoTCP, Port(443)
		}
		rules = append(rules, Rule{Selector: s, Action: Protect, PolicyID: uint32(i)})
	}
	return rules
}

// lastV4 builds a packet that matches the IPv4 rule checked last.
func lastV4(tab *Table) []byte {
	e := tab.Rules()[len(tab.Rules())-1]
	for i := len(tab.Rules()) - 1; i >= 0; i-- {
		if r := tab.Rules()[i]; r.Selector.Is4() && r.Selector.Protocol == 0 {
			e = r
			break
		}
	}
	return pktSpec{src: e.Selector.Local.To, dst: e.Selector.Remote.From, proto: header.ProtoUDP, sport: 1, dport: 2}.bytes()
}

func TestZeroAllocs(t *testing.T) {
	tab := mustCompile(t, benchRules(100))
	p4 := lastV4(tab)
	p6 := pktSpec{src: a4("fd00:1::1"), dst: a4("fd01:1::1"), proto: header.ProtoTCP, ext6: []byte{header.ProtoHopByHop}}.bytes()
	bad := p4[:10]
	var live Live
	live.Store(tab)
	if r := tab.Outbound(p4); r.Status != Matched {
		t.Fatalf("bench packet does not match: %+v", r)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		tb := live.Load()
		tb.Outbound(p4)
		tb.Inbound(p4)
		tb.Outbound(p6)
		tb.Outbound(bad)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lookup", allocs)
	}
}

// BenchmarkLookup measures the compiled table as Compile builds it;
// BenchmarkLookupScan the same tables with the index disabled, for the
// comparison that chose the index threshold.
func BenchmarkLookup(b *testing.B) { benchLookup(b, indexThreshold) }

func BenchmarkLookupScan(b *testing.B) { benchLookup(b, 1<<30) }

func benchLookup(b *testing.B, threshold int) {
	defer func(old int) { indexThreshold = old }(indexThreshold)
	indexThreshold = threshold
	for _, n := range []int{1, 10, 100, 1000} {
		tab := mustCompile(b, benchRules(n))
		worst := lastV4(tab)
		if tab.Outbound(worst).Status != Matched {
			b.Fatal("bench packet does not match")
		}
		first := tab.Rules()[0].Selector
		best := pktSpec{src: first.Local.From, dst: first.Remote.From, proto: header.ProtoTCP, sport: 1, dport: 443}.bytes()
		miss := pktSpec{src: a4("192.168.0.1"), dst: a4("192.168.0.2"), proto: header.ProtoUDP}.bytes()
		for _, c := range []struct {
			name string
			pkt  []byte
		}{{"first", best}, {"last", worst}, {"miss", miss}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					tab.Outbound(c.pkt)
				}
			})
		}
	}
}

// BenchmarkLookupSharedRemote is the initiator of bench/ikebench -idle:
// n-1 idle policies, a /32 of 10.64.0.0/10 each, and one active LAN-to-LAN
// policy, all to the same remote LAN. The idle rules are more specific,
// so they all come first in decision order, and every packet of the
// active tunnel has its remote address in the range they share.
func BenchmarkLookupSharedRemote(b *testing.B) {
	for _, n := range []int{100, 10000} {
		rules := sharedRemoteRules(n)
		s := NewSet()
		for k, r := range rules {
			if err := s.Add(r, Order{Major: uint64(k)}); err != nil {
				b.Fatal(err)
			}
		}
		active := pktSpec{src: a4("10.1.0.5"), dst: a4("10.2.0.7"), proto: header.ProtoTCP, sport: 40000, dport: 5201}.bytes()
		for _, c := range []struct {
			name string
			tab  *Table
		}{{"set", s.Table()}, {"compiled", mustCompile(b, rules)}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if r := c.tab.Outbound(active); r.Status != Matched || r.PolicyID != 0 {
						b.Fatalf("active packet: %+v", r)
					}
				}
			})
		}
	}
}

// sharedRemoteRules is the rule set of BenchmarkLookupSharedRemote: the
// active rule (policy 0) 10.1.0.0/24 ⇄ 10.2.0.0/24 first, then n-1 idle
// rules (policy k) 10.64.k/32 ⇄ 10.2.0.0/24.
func sharedRemoteRules(n int) []Rule {
	rules := []Rule{{Selector: sel("10.1.0.0/24", "10.2.0.0/24", 0, AllPorts, AllPorts), Action: Protect}}
	for k := 1; k < n; k++ {
		a := netip.AddrFrom4([4]byte{10, 64 + byte(k>>16), byte(k >> 8), byte(k)})
		rules = append(rules, Rule{Selector: Selector{Local: AddrRange{a, a}, Remote: MustPrefixRange("10.2.0.0/24"),
			LocalPorts: AllPorts, RemotePorts: AllPorts}, Action: Protect, PolicyID: uint32(k)})
	}
	return rules
}

func TestPairs(t *testing.T) {
	l4 := TS{Range: MustPrefixRange("10.1.0.0/16"), Ports: AllPorts}
	l4tcp := TS{Range: MustPrefixRange("10.1.1.0/24"), Protocol: header.ProtoTCP, Ports: Port(80)}
	l6 := TS{Range: MustPrefixRange("fd00:1::/64"), Ports: AllPorts}
	r4 := TS{Range: MustPrefixRange("10.2.0.0/16"), Ports: AllPorts}
	r4udp := TS{Range: MustPrefixRange("10.3.0.0/16"), Protocol: header.ProtoUDP, Ports: Port(53)}
	r6 := TS{Range: MustPrefixRange("fd00:2::/64"), Protocol: header.ProtoICMPv6, Ports: AllPorts}
	got := Pairs([]TS{l4, l4tcp, l6}, []TS{r4, r4udp, r6})
	want := []Selector{
		{Local: l4.Range, Remote: r4.Range, LocalPorts: AllPorts, RemotePorts: AllPorts},
		{Local: l4.Range, Remote: r4udp.Range, Protocol: header.ProtoUDP, LocalPorts: AllPorts, RemotePorts: Port(53)},
		{Local: l4tcp.Range, Remote: r4.Range, Protocol: header.ProtoTCP, LocalPorts: Port(80), RemotePorts: AllPorts},
		// l4tcp with r4udp: TCP vs UDP, no traffic; l4 with r6: families differ.
		{Local: l6.Range, Remote: r6.Range, Protocol: header.ProtoICMPv6, LocalPorts: AllPorts, RemotePorts: AllPorts},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d selectors %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%d: got %v, want %v", i, got[i], want[i])
		}
	}
	if _, err := Compile([]Rule{{Selector: got[0]}, {Selector: got[3]}}); err != nil {
		t.Fatal(err)
	}
	if s := l4tcp.String(); s != "10.1.1.0/24[tcp/80]" {
		t.Errorf("String %q", s)
	}
}
