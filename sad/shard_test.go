package sad

import (
	"fmt"
	"testing"
)

// shardPointers snapshots which map each shard of m publishes.
func shardPointers(m *shardedMap) []*saMap {
	out := make([]*saMap, shardCount)
	for i := range m.shards {
		out[i] = m.shards[i].Load()
	}
	return out
}

// An install, a rekey and a removal in a full table republish only the
// shard of the key they change: the cost of a write no longer grows with
// the number of SAs (bringing up N tunnels copied O(N²) entries before).
func TestWriteCopiesOneShard(t *testing.T) {
	tab := fill(t, 2000)
	for i := range 2000 {
		if err := tab.InstallOutbound(mustSA(t, cfg(Outbound, uint32(0x90000+i), uint32(i)))); err != nil {
			t.Fatal(err)
		}
	}
	changed := func(before []*saMap, m *shardedMap) int {
		n := 0
		for i, p := range shardPointers(m) {
			if p != before[i] {
				n++
			}
		}
		return n
	}
	beforeIn, beforeOut := shardPointers(&tab.in), shardPointers(&tab.out)
	in, out := mustSA(t, cfg(Inbound, 0x7777777, 5000)), mustSA(t, cfg(Outbound, 0x8888888, 5000))
	if err := tab.Rekey(in, out, 0, 0); err != nil {
		t.Fatal(err)
	}
	if c, o := changed(beforeIn, &tab.in), changed(beforeOut, &tab.out); c != 1 || o != 1 {
		t.Fatalf("install republished %d inbound and %d outbound shards, want 1 and 1", c, o)
	}
	beforeIn = shardPointers(&tab.in)
	if !tab.Remove(in) {
		t.Fatal("Remove: not installed")
	}
	if c := changed(beforeIn, &tab.in); c != 1 {
		t.Fatalf("removal republished %d shards, want 1", c)
	}
	if tab.Inbound(0x7777777) != nil || tab.Outbound(5000) != out {
		t.Fatal("lookups after the writes are wrong")
	}
	if i, o := tab.Len(); i != 2000 || o != 2001 {
		t.Fatalf("Len = %d, %d; want 2000, 2001", i, o)
	}
	if n := len(tab.InboundSAs()); n != 2000 {
		t.Fatalf("InboundSAs: %d", n)
	}
}

// Policy IDs are handed out counting up; the hash must still spread them
// over all shards rather than fill a few.
func TestShardsSpreadSequentialKeys(t *testing.T) {
	var count [shardCount]int
	const n = 100 * shardCount
	for k := range uint32(n) {
		count[shardOf(k+1)]++
	}
	for i, c := range count {
		if c < n/shardCount/2 || c > n/shardCount*2 {
			t.Fatalf("shard %d holds %d of %d sequential keys (even: %d)", i, c, n, n/shardCount)
		}
	}
}

// BenchmarkInstallRemove is one install and one removal in a table that
// already holds n SAs: flat in n since the maps are sharded.
func BenchmarkInstallRemove(b *testing.B) {
	for _, n := range []int{100, 10000} {
		tab := fill(b, n)
		b.Run(fmt.Sprintf("SAs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				sa := mustSA(b, cfg(Inbound, 0x7fff0000, 1))
				if err := tab.InstallInbound(sa); err != nil {
					b.Fatal(err)
				}
				tab.Remove(sa)
			}
		})
	}
}
