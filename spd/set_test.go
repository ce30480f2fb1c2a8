package spd

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

// orderedRule is a rule of the Set under test with its Order.
type orderedRule struct {
	r Rule
	o Order
}

// rebuild is the reference for a Set: Compile of its rules listed in Order,
// so that Compile's tie-break (the position) is the Set's (the Order).
func rebuild(t testing.TB, rs []orderedRule) *Table {
	t.Helper()
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b orderedRule) int { return a.o.compare(b.o) })
	rules := make([]Rule, len(sorted))
	for i, r := range sorted {
		rules[i] = r.r
	}
	return mustCompile(t, rules)
}

// setVerdict is the Set table's verdict and the rule that gave it.
func setVerdict(tab *Table, p pktSpec, inbound bool) (Result, *Rule) {
	b := p.bytes()
	var f Flow
	if !f.Parse(b) {
		return malformed, nil
	}
	local, remote, lport, rport := f.Src, f.Dst, f.SrcPort, f.DstPort
	if inbound {
		local, remote, lport, rport = remote, local, rport, lport
	}
	res := tab.MatchFlow(&f, inbound)
	if e := tab.matchSet(&f, local, remote, lport, rport); e != nil {
		r := e.toRule(f.Is4)
		return res, &r
	}
	return res, nil
}

// checkAgainstRebuild compares a Set's table with the full rebuild of the
// same rules on random packets: the same status, verdict and rule.
func checkAgainstRebuild(t *testing.T, g gen, tab *Table, rs []orderedRule, packets int) int {
	t.Helper()
	ref := rebuild(t, rs)
	if tab.Len() != ref.Len() {
		t.Fatalf("Len %d, rebuild %d", tab.Len(), ref.Len())
	}
	if got, want := tab.Rules(), ref.Rules(); !slices.Equal(got, want) {
		t.Fatalf("Rules() differ from the rebuild's:\n%v\n%v", got, want)
	}
	matched := 0
	for range packets {
		p := g.packet(g.IntN(2) == 0)
		inbound := g.IntN(2) == 0
		var want Result
		if inbound {
			want = ref.Inbound(p.bytes())
		} else {
			want = ref.Outbound(p.bytes())
		}
		got, rule := setVerdict(tab, p, inbound)
		if got.Status != want.Status || got.Action != want.Action || got.PolicyID != want.PolicyID {
			t.Fatalf("%+v inbound=%v: set %+v, rebuild %+v", p, inbound, got, want)
		}
		if want.Status == Matched {
			matched++
			if rule == nil || *rule != ref.Rules()[want.Rule] {
				t.Fatalf("%+v inbound=%v: set matched %+v, rebuild %+v", p, inbound, rule, ref.Rules()[want.Rule])
			}
		}
	}
	return matched
}

// TestSetAgainstRebuild: random sequences of insertions and removals, the
// Set's table after each step against Compile of the same rules; tables
// published earlier must keep answering as they did.
// It runs with local indexes in every remote interval, from three
// candidates on (built and dropped often), at the default threshold and
// never.
func TestSetAgainstRebuild(t *testing.T) {
	defer func(old int) { localIndexThreshold = old }(localIndexThreshold)
	for _, th := range []int{0, 3, 16, 1 << 30} {
		localIndexThreshold = th
		t.Run(fmt.Sprintf("localIndexThreshold=%d", th), testSetAgainstRebuild)
	}
}

func testSetAgainstRebuild(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	matched, lookups := 0, 0
	for round := range 40 {
		s := NewSet()
		var rs []orderedRule
		type snapshot struct {
			tab *Table
			rs  []orderedRule
		}
		var snaps []snapshot
		for step := range 120 {
			if len(rs) > 0 && g.IntN(3) == 0 {
				i := g.IntN(len(rs))
				if !s.Remove(rs[i].r, rs[i].o) {
					t.Fatalf("round %d step %d: Remove of an added rule failed", round, step)
				}
				rs = slices.Delete(rs, i, i+1)
			} else {
				r := orderedRule{g.rule(g.IntN(2) == 0), Order{Major: uint64(g.IntN(4)), Name: []string{"", "a", "b"}[g.IntN(3)], Minor: uint64(step)}}
				if g.IntN(6) == 0 && len(rs) > 0 {
					// The same rule again under another order: a rekeyed
					// CHILD SA's policy while the old one lingers.
					r.r = rs[g.IntN(len(rs))].r
				}
				if err := s.Add(r.r, r.o); err != nil {
					t.Fatal(err)
				}
				rs = append(rs, r)
			}
			tab := s.Table()
			matched += checkAgainstRebuild(t, g, tab, rs, 40)
			lookups += 40
			if step%30 == 0 {
				snaps = append(snaps, snapshot{tab, slices.Clone(rs)})
			}
		}
		for _, sn := range snaps {
			checkAgainstRebuild(t, g, sn.tab, sn.rs, 100)
		}
		// Removing everything leaves one empty interval per family.
		for _, r := range rs {
			if !s.Remove(r.r, r.o) {
				t.Fatal("Remove failed while emptying the set")
			}
		}
		if s.Len() != 0 || len(s.v4.chunks) != 1 || len(s.v4.chunks[0].starts) != 1 || len(s.v6.chunks[0].starts) != 1 {
			t.Fatalf("round %d: emptied set keeps %d rules, intervals %v / %v", round, s.Len(), s.v4.chunks[0].starts, s.v6.chunks[0].starts)
		}
	}
	t.Logf("%d of %d lookups matched a rule", matched, lookups)
	if matched < lookups/10 {
		t.Fatalf("only %d of %d lookups matched: the generator is too sparse to test much", matched, lookups)
	}
}

// TestSetManyChunks: thousands of host rules (a hub's CHILD SAs) spread
// over many chunks, removed in random order, against the rebuild.
func TestSetManyChunks(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(7, 8))}
	s := NewSet()
	var rs []orderedRule
	catchAll := orderedRule{Rule{Selector: sel("10.0.0.0/8", "0.0.0.0/0", 0, AllPorts, AllPorts), Action: Trap, PolicyID: 9}, Order{Major: 1 << 63}}
	if err := s.Add(catchAll.r, catchAll.o); err != nil {
		t.Fatal(err)
	}
	rs = append(rs, catchAll)
	for k := range 3000 {
		a := netip.AddrFrom4([4]byte{10, 64 + byte(k>>16), byte(k >> 8), byte(k)})
		r := orderedRule{Rule{Selector: sel("10.0.0.0/16", netip.PrefixFrom(a, 32-2*(k%2)).Masked().String(), 0, AllPorts, AllPorts),
			Action: Protect, PolicyID: uint32(k)}, Order{Major: uint64(k)}}
		if err := s.Add(r.r, r.o); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if len(s.v4.chunks) < 3000/maxChunk {
		t.Fatalf("%d chunks for 3000 host rules", len(s.v4.chunks))
	}
	hubPacket := func() pktSpec {
		k := g.IntN(3100)
		return pktSpec{src: a4("10.0.1.1"), dst: netip.AddrFrom4([4]byte{10, 64, byte(k >> 8), byte(k)}), proto: header.ProtoUDP}
	}
	check := func() {
		ref := rebuild(t, rs)
		tab := s.Table()
		for range 500 {
			p := hubPacket()
			checkSetVerdict(t, tab, ref, p)
		}
	}
	check()
	g.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	for len(rs) > 1 {
		if !s.Remove(rs[len(rs)-1].r, rs[len(rs)-1].o) {
			t.Fatal("Remove failed")
		}
		rs = rs[:len(rs)-1]
		if len(rs)%500 == 0 {
			check()
		}
	}
	check()
}

func TestSetErrors(t *testing.T) {
	s := NewSet()
	r := Rule{Selector: sel("10.0.0.0/8", "10.1.0.0/16", 0, AllPorts, AllPorts), Action: Protect}
	if err := s.Add(r, Order{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Add(r, Order{}); err == nil {
		t.Error("the same rule with the same order added twice")
	}
	if err := s.Add(Rule{Selector: Selector{}}, Order{}); err == nil {
		t.Error("invalid selector accepted")
	}
	if err := s.Add(Rule{Selector: r.Selector, Action: Trap + 1}, Order{Minor: 1}); err == nil {
		t.Error("unknown action accepted")
	}
	if s.Remove(r, Order{Minor: 1}) {
		t.Error("removed a rule under an order it was not added with")
	}
	if !s.Remove(r, Order{}) || s.Len() != 0 {
		t.Error("Remove failed")
	}
}

func TestSetZeroAllocs(t *testing.T) {
	s := NewSet()
	for i, r := range benchRules(1000) {
		if err := s.Add(r, Order{Minor: uint64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	var live Live
	live.Store(s.Table())
	p4 := lastV4(mustCompile(t, benchRules(1000)))
	if r := live.Load().Outbound(p4); r.Status != Matched {
		t.Fatalf("bench packet does not match: %+v", r)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		tb := live.Load()
		tb.Outbound(p4)
		tb.Inbound(p4)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per lookup", allocs)
	}
}

// BenchmarkSetChange is one host rule added and removed in a Set of n
// such rules, and the Table published after each: what one CHILD SA's
// policies cost a hub; BenchmarkCompileAll is the same change done by
// compiling everything again, as the installer did before Sets.
func BenchmarkSetChange(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s := NewSet()
		for k := range n {
			if err := s.Add(hostRule(k), Order{Major: uint64(k)}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				r := hostRule(n)
				if err := s.Add(r, Order{Major: uint64(n)}); err != nil {
					b.Fatal(err)
				}
				_ = s.Table()
				s.Remove(r, Order{Major: uint64(n)})
				_ = s.Table()
			}
		})
	}
}

// BenchmarkSetChangeSharedRemote is BenchmarkSetChange for the rules of
// BenchmarkLookupSharedRemote: one idle policy added and removed among n
// that share its remote range, so every change lands in the same remote
// interval (and its local index).
func BenchmarkSetChangeSharedRemote(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		rules := sharedRemoteRules(n + 1)
		s := NewSet()
		for k, r := range rules[:n] {
			if err := s.Add(r, Order{Major: uint64(k)}); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			r, o := rules[n], Order{Major: uint64(n)}
			for range b.N {
				if err := s.Add(r, o); err != nil {
					b.Fatal(err)
				}
				_ = s.Table()
				s.Remove(r, o)
				_ = s.Table()
			}
		})
	}
}

func BenchmarkSetLookup(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s := NewSet()
		rules := make([]Rule, n)
		for k := range n {
			rules[k] = hostRule(k)
			if err := s.Add(rules[k], Order{Major: uint64(k)}); err != nil {
				b.Fatal(err)
			}
		}
		pkt := pktSpec{src: a4("10.0.1.1"), dst: rules[n/3].Selector.Remote.From, proto: header.ProtoUDP}.bytes()
		for _, c := range []struct {
			name string
			tab  *Table
		}{{"set", s.Table()}, {"compiled", mustCompile(b, rules)}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for range b.N {
					if c.tab.Outbound(pkt).Status != Matched {
						b.Fatal("no match")
					}
				}
			})
		}
	}
}

// hostRule is a hub's policy for spoke k: the hub's LAN to the spoke's /32.
func hostRule(k int) Rule {
	a := netip.AddrFrom4([4]byte{10, 64 + byte(k>>16), byte(k >> 8), byte(k)})
	return Rule{Selector: Selector{Local: MustPrefixRange("10.0.0.0/16"), Remote: AddrRange{a, a}, LocalPorts: AllPorts, RemotePorts: AllPorts},
		Action: Protect, PolicyID: 1}
}

// checkSetVerdict compares a Set's outbound verdict and matched rule for p
// with those of ref, a table compiled from the same rules.
func checkSetVerdict(t *testing.T, tab, ref *Table, p pktSpec) {
	t.Helper()
	want := ref.Outbound(p.bytes())
	got, rule := setVerdict(tab, p, false)
	if got.Status != want.Status || got.PolicyID != want.PolicyID || (rule != nil && *rule != ref.Rules()[want.Rule]) {
		t.Fatalf("%v→%v: set %+v, rebuild %+v", p.src, p.dst, got, want)
	}
}
