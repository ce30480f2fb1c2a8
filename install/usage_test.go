package install

import (
	"bytes"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// traffic passes n packets of size bytes through the CHILD SA with our
// inbound SPI in (accepted inbound) and through the policy's current
// outbound SA, counting what the SAs accepted.
func traffic(t *testing.T, table *sad.Table, in, policy uint32, n, size int) (inPkts, outPkts int) {
	t.Helper()
	for range n {
		if sa := table.Inbound(in); sa != nil && sa.Acquire() {
			seq, r := sa.Check(uint32(sa.Stats().Packets + 1))
			if r == sad.NotDropped && sa.Accept(seq, size) == sad.NotDropped {
				inPkts++
			}
			sa.Release()
		}
		if sa := table.Outbound(policy); sa != nil && sa.Acquire() {
			if _, r := sa.NextSeq(size); r == sad.NotDropped {
				outPkts++
			}
			sa.Release()
		}
	}
	return inPkts, outPkts
}

// TestUsageSurvivesRekeysAndReconnects: a conn's usage counts every
// packet its SAs accepted across a CHILD rekey (with the old inbound SA
// still lingering and carrying packets), a reconnect with new SPIs, and
// the folding of old SAs' counters after UsageFoldDelay; nothing is
// counted twice and nothing lost.
func TestUsageSurvivesRekeysAndReconnects(t *testing.T) {
	table := sad.NewTable(sad.Options{Linger: time.Hour})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	inst.now = func() time.Time { return now }
	var wantIn, wantOut int
	add := func(i, o int) { wantIn += i; wantOut += o }
	check := func(step string) {
		t.Helper()
		u := inst.Usage(now)["net"]
		if u.PacketsIn != uint64(wantIn) || u.PacketsOut != uint64(wantOut) ||
			u.BytesIn != uint64(wantIn)*100 || u.BytesOut != uint64(wantOut)*100 {
			t.Fatalf("%s: usage %+v, want %d in and %d out packets of 100 bytes", step, u, wantIn, wantOut)
		}
	}
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	add(traffic(t, table, 0x1000, 7, 10, 100))
	check("first CHILD SA")

	// CHILD rekey, make before break: the new pair takes over, the old
	// inbound SA lingers and still accepts the peer's stragglers.
	if err := inst.Install(gcmChild("net", 7, 0x1001, 0x2001)); err != nil {
		t.Fatal(err)
	}
	add(traffic(t, table, 0x1001, 7, 5, 100))
	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	i, _ := traffic(t, table, 0x1000, 0, 3, 100) // stragglers on the lingering SA
	if i != 3 {
		t.Fatalf("lingering inbound SA accepted %d of 3", i)
	}
	add(i, 0)
	check("after the CHILD rekey")

	// Well after the fold delay the old pair is summed for good.
	now = now.Add(UsageFoldDelay + time.Second)
	check("after folding")
	if n := len(inst.usage["net"].removed); n != 0 {
		t.Errorf("%d SAs of removed CHILD SAs still read live after folding, want none", n)
	}

	// A reconnect: all SAs go, new ones with other SPIs come.
	if err := inst.Remove("net", 0x1001, 0x2001); err != nil {
		t.Fatal(err)
	}
	if err := inst.Install(gcmChild("net", 7, 0x1002, 0x2002)); err != nil {
		t.Fatal(err)
	}
	add(traffic(t, table, 0x1002, 7, 4, 100))
	check("after the reconnect")
	now = now.Add(UsageFoldDelay + time.Second)
	check("after folding the reconnect")
}

// TestUsageConcurrentTraffic: packets counted while CHILD SAs are being
// rekeyed under load, from several goroutines, all end up in the usage.
func TestUsageConcurrentTraffic(t *testing.T) {
	table := sad.NewTable(sad.Options{Linger: time.Hour})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, o := traffic(t, table, 0, 7, 1, 100)
				mu.Lock()
				out += o
				mu.Unlock()
			}
		})
	}
	sent := func() int {
		mu.Lock()
		defer mu.Unlock()
		return out
	}
	for k := range uint32(20) {
		// Traffic on every pair before it is replaced.
		for before := sent(); sent() < before+10; {
			time.Sleep(100 * time.Microsecond)
		}
		if err := inst.Install(gcmChild("net", 7, 0x1001+k, 0x2001+k)); err != nil {
			t.Fatal(err)
		}
		if err := inst.Remove("net", 0x1000+k, 0x2000+k); err != nil {
			t.Fatal(err)
		}
		inst.Usage(time.Now())
	}
	close(stop)
	wg.Wait()
	u := inst.Usage(time.Now())["net"]
	if u.PacketsOut != uint64(out) || u.BytesOut != uint64(out)*100 || out == 0 {
		t.Errorf("usage %d packets %d bytes out, the SAs took %d packets", u.PacketsOut, u.BytesOut, out)
	}
}

// TestUsageLastInbound: LastInbound moves only when inbound packets came.
func TestUsageLastInbound(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if u := inst.Usage(t0)["net"]; !u.LastInbound.IsZero() {
		t.Fatalf("LastInbound %v before any packet", u.LastInbound)
	}
	traffic(t, table, 0x1000, 0, 1, 60)
	if u := inst.Usage(t0.Add(time.Second))["net"]; !u.LastInbound.Equal(t0.Add(time.Second)) {
		t.Fatalf("LastInbound %v after a packet", u.LastInbound)
	}
	traffic(t, table, 0, 7, 5, 60) // outbound only
	if u := inst.Usage(t0.Add(5 * time.Second))["net"]; !u.LastInbound.Equal(t0.Add(time.Second)) {
		t.Fatalf("LastInbound %v moved without inbound packets", u.LastInbound)
	}
}

// TestUsageIntoReusesTheMap: UsageInto empties the map it is given and
// fills it with what Usage returns, without allocating once the map has
// room (the daemon samples every conn once a second).
func TestUsageIntoReusesTheMap(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	for i := range 50 {
		if err := inst.Install(gcmChild(fmt.Sprintf("c%d", i), uint32(i+1), uint32(0x1000+i), uint32(0x2000+i))); err != nil {
			t.Fatal(err)
		}
	}
	traffic(t, table, 0x1000, 1, 3, 60)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	into := map[string]Usage{"stale": {PacketsIn: 99}}
	inst.UsageInto(t0, into)
	if !maps.Equal(into, inst.Usage(t0)) || len(into) != 50 {
		t.Fatalf("UsageInto gave %d records, different from Usage's", len(into))
	}
	if allocs := testing.AllocsPerRun(20, func() { inst.UsageInto(t0, into) }); allocs != 0 {
		t.Errorf("UsageInto into a reused map allocates %.0f times", allocs)
	}
}

// TestExportKeysAndWipe: the installer hands out copies of the current
// CHILD SAs' keys, taken from their ciphers; once a CHILD SA goes its keys
// are wiped and no longer exported, and the outbound SA a rekey replaced
// exports none.
func TestExportKeysAndWipe(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	c := gcmChild("net", 7, 0x1000, 0x2000)
	wantIn, wantOut := bytes.Clone(c.InEncrKey), bytes.Clone(c.OutEncrKey)
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	ks := inst.ExportKeys()
	if len(ks) != 1 || ks[0].InSPI != 0x1000 || ks[0].OutSPI != 0x2000 || !ks[0].Encap ||
		!bytes.Equal(ks[0].InEncr, wantIn) || !bytes.Equal(ks[0].OutEncr, wantOut) || ks[0].InInteg != nil {
		t.Fatalf("exported %+v", ks)
	}
	// A rekey: the new pair's keys, and the old pair without its replaced
	// (and wiped) outbound SA's.
	r := gcmChild("net", 7, 0x3000, 0x4000)
	r.InEncrKey, r.OutEncrKey = bytes.Repeat([]byte{3}, 20), bytes.Repeat([]byte{4}, 20)
	if err := inst.Install(r); err != nil {
		t.Fatal(err)
	}
	ks = inst.ExportKeys()
	if len(ks) != 2 || ks[0].InSPI != 0x1000 || !bytes.Equal(ks[0].InEncr, wantIn) || ks[0].OutEncr != nil ||
		ks[1].InSPI != 0x3000 || !bytes.Equal(ks[1].InEncr, bytes.Repeat([]byte{3}, 20)) || !bytes.Equal(ks[1].OutEncr, bytes.Repeat([]byte{4}, 20)) {
		t.Fatalf("exported after the rekey %+v", ks)
	}
	for _, p := range [][2]uint32{{0x1000, 0x2000}, {0x3000, 0x4000}} {
		in, out := inst.children[p[0]].in, inst.children[p[0]].out
		if err := inst.Remove("net", p[0], p[1]); err != nil {
			t.Fatal(err)
		}
		if e, _ := out.Keys(); e != nil {
			t.Errorf("outbound SA %08x kept its keys after its CHILD SA went", p[1])
		}
		if p[0] == 0x3000 { // the last of the conn's policy: nothing lingers
			if e, _ := in.Keys(); e != nil {
				t.Errorf("inbound SA %08x kept its keys after its CHILD SA went", p[0])
			}
		}
	}
	if len(inst.ExportKeys()) != 0 {
		t.Error("keys exported for a removed CHILD SA")
	}
}
