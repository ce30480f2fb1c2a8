package install

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// rebuiltPolicies is the reference for the installer's incremental
// policies: every installed CHILD SA's and trap's rules compiled from
// scratch into one Table per interface, in the documented order (conns by
// the time they came up, then inbound SPI; traps after, by name), with
// identical rules listed once.
func rebuiltPolicies(t *testing.T, in *Installer) map[uint32]*spd.Table {
	t.Helper()
	rules := map[uint32][]spd.Rule{}
	seen := map[uint32]map[spd.Rule]bool{}
	add := func(iface uint32, rs []spd.Rule) {
		if seen[iface] == nil {
			seen[iface] = map[spd.Rule]bool{}
		}
		for _, r := range rs {
			if !seen[iface][r] {
				seen[iface][r] = true
				rules[iface] = append(rules[iface], r)
			}
		}
	}
	spis := make([]uint32, 0, len(in.children))
	for spi := range in.children {
		spis = append(spis, spi)
	}
	slices.SortFunc(spis, func(a, b uint32) int {
		return cmp.Or(cmp.Compare(in.upSince[in.children[a].conn], in.upSince[in.children[b].conn]), cmp.Compare(a, b))
	})
	for _, spi := range spis {
		add(in.children[spi].iface, in.children[spi].rules())
	}
	names := make([]string, 0, len(in.traps))
	for n := range in.traps {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		add(in.traps[n].iface, in.traps[n].rules)
	}
	out := map[uint32]*spd.Table{}
	for id, rs := range rules {
		tab, err := spd.Compile(rs)
		if err != nil {
			t.Fatal(err)
		}
		out[id] = tab
	}
	return out
}

// TestPoliciesAgainstRebuild: random installs, rekeys, removals and traps
// of conns with overlapping selectors and priorities; after each step the
// published policies of every interface decide every packet as the full
// rebuild does.
func TestPoliciesAgainstRebuild(t *testing.T) {
	g := rand.New(rand.NewPCG(11, 12))
	conns := []struct {
		name  string
		reqID uint32
		prio  uint32
		iface uint32
	}{{"a", 1, 5, 0}, {"b", 2, 5, 0}, {"c", 3, 0, 0}, {"d", 4, 0, 0}, {"r", 5, 0, 7}}
	byName := func(n string) int {
		return slices.IndexFunc(conns, func(c struct {
			name  string
			reqID uint32
			prio  uint32
			iface uint32
		}) bool {
			return c.name == n
		})
	}
	locals := []string{"10.1.0.0/24", "10.1.0.0/16", "10.1.0.3/32"}
	remotes := []string{"10.2.0.0/24", "10.2.0.0/16", "10.2.0.5/32", "10.2.1.0/24", "0.0.0.0/0"}
	pick := func(l []string) []spd.TS {
		ts := []spd.TS{spd.PrefixTS(netip.MustParsePrefix(l[g.IntN(len(l))]))}
		if g.IntN(4) == 0 {
			ts = append(ts, spd.PrefixTS(netip.MustParsePrefix(l[g.IntN(len(l))])))
		}
		return ts
	}
	for round := range 20 {
		table := sad.NewTable(sad.Options{})
		live := &spd.Live{}
		inst := New(table, live, Options{
			Priority:  func(n string) uint32 { return conns[byName(n)].prio },
			Interface: func(n string) uint32 { return conns[byName(n)].iface },
		})
		routed := inst.InterfacePolicies(7)
		type child struct {
			conn    string
			in, out uint32
		}
		var up []child
		nextSPI := uint32(0x1000)
		for step := range 150 {
			c := conns[g.IntN(len(conns))]
			switch op := g.IntN(10); {
			case op < 5: // a new CHILD SA (with one of the conn up: a rekey)
				ch := gcmChild(c.name, c.reqID, nextSPI+uint32(g.IntN(3))*0x100000, nextSPI+0x800000)
				nextSPI++
				ch.LocalTS, ch.RemoteTS = pick(locals), pick(remotes)
				if err := inst.Install(ch); err != nil {
					t.Fatal(err)
				}
				up = append(up, child{c.name, ch.InSPI, ch.OutSPI})
			case op < 8 && len(up) > 0:
				i := g.IntN(len(up))
				if err := inst.Remove(up[i].conn, up[i].in, up[i].out); err != nil {
					t.Fatal(err)
				}
				up = slices.Delete(up, i, i+1)
			case op < 9:
				conn := config.Conn{Name: c.name, Mode: config.ModeTunnel}
				conn.Local.Subnets, conn.Remote.Subnets = pick(locals), pick(remotes)
				if err := inst.InstallTrap(conn); err != nil {
					t.Fatal(err)
				}
			default:
				if err := inst.RemoveTrap(c.name); err != nil {
					t.Fatal(err)
				}
			}
			ref := rebuiltPolicies(t, inst)
			for iface, l := range map[uint32]*spd.Live{0: live, 7: routed} {
				want := ref[iface]
				if want == nil {
					want = &spd.Table{}
				}
				got := l.Load()
				if n := distinct(got.Rules()); n != want.Len() {
					t.Fatalf("round %d step %d iface %d: %d distinct rules, rebuild %d", round, step, iface, n, want.Len())
				}
				for range 60 {
					src := netip.AddrFrom4([4]byte{10, 1, 0, byte(g.IntN(6))})
					dst := netip.AddrFrom4([4]byte{10, 2, byte(g.IntN(3)), byte(g.IntN(8))})
					if g.IntN(8) == 0 {
						dst = netip.AddrFrom4([4]byte{192, 0, 2, 1})
					}
					p := ipv4(src.String(), dst.String())
					if gv, wv := got.Outbound(p), want.Outbound(p); gv.Status != wv.Status || gv.Action != wv.Action || gv.PolicyID != wv.PolicyID {
						t.Fatalf("round %d step %d iface %d %v -> %v: published %+v, rebuild %+v", round, step, iface, src, dst, gv, wv)
					}
				}
			}
		}
		inst.RemoveAll()
		if live.Load().Len() != 0 || routed.Load().Len() != 0 {
			t.Fatalf("RemoveAll left %d and %d rules", live.Load().Len(), routed.Load().Len())
		}
		table.Close()
	}
}

// distinct counts the different rules: a rekeyed pair's rules are in the
// published policies twice, the rebuild lists them once.
func distinct(rs []spd.Rule) int {
	seen := map[spd.Rule]bool{}
	for _, r := range rs {
		seen[r] = true
	}
	return len(seen)
}
