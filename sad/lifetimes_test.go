package sad

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// timedEvent is a lifetime event and when it arrived.
type timedEvent struct {
	spi  uint32
	kind EventKind
	at   time.Duration // since the test's start
}

// TestTimeLifetimesManySAs: the Table's one lifetime timer delivers the
// time limits of many SAs, each at its own deadline and in deadline order;
// soft before hard even when the hard limit comes first; nothing for SAs
// removed before their deadline; and the queue is empty once everything
// fired or went.
func TestTimeLifetimesManySAs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var (
			mu  sync.Mutex
			evs []timedEvent
		)
		tab := NewTable(Options{OnEvent: func(e Event) {
			mu.Lock()
			evs = append(evs, timedEvent{e.SA.SPI(), e.Kind, time.Since(start)})
			mu.Unlock()
		}})
		const n = 60
		want := map[string]time.Duration{} // "spi kind" -> arrival
		var removed []*SA
		for k := range n {
			spi := uint32(0x1000 + k)
			c := cfg(Inbound, spi, uint32(k+1))
			// Deadlines in an order unrelated to the install order.
			soft := time.Duration((k*37)%n+1) * time.Minute
			hard := soft + time.Duration(k%5)*time.Minute
			if k%7 == 0 {
				// Hard before soft: the hard limit delivers both.
				soft, hard = hard+10*time.Minute, soft
			}
			c.Soft, c.Hard = Lifetime{Time: soft}, Lifetime{Time: hard}
			if k%11 == 3 {
				c.Soft = Lifetime{} // hard only
			}
			sa := mustSA(t, c)
			if err := tab.InstallInbound(sa); err != nil {
				t.Fatal(err)
			}
			if k%9 == 4 {
				removed = append(removed, sa)
				continue
			}
			first := hard
			if c.Soft.Time != 0 {
				first = min(soft, hard)
			}
			want[fmt.Sprint(spi, " ", SoftExpired)] = first
			want[fmt.Sprint(spi, " ", HardExpired)] = hard
		}
		if got := tab.life.len(); got != n {
			t.Fatalf("%d SAs queued, want %d", got, n)
		}
		for _, sa := range removed {
			tab.Remove(sa)
		}
		if got, wantLen := tab.life.len(), n-len(removed); got != wantLen {
			t.Fatalf("%d SAs queued after removals, want %d", got, wantLen)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(evs) != len(want) {
			t.Errorf("%d events, want %d", len(evs), len(want))
		}
		seen := map[uint32]EventKind{}
		for i, e := range evs {
			key := fmt.Sprint(e.spi, " ", e.kind)
			at, ok := want[key]
			if !ok {
				t.Errorf("unexpected event %s", key)
				continue
			}
			if e.at != at {
				t.Errorf("%s at %v, want %v", key, e.at, at)
			}
			if i > 0 && e.at < evs[i-1].at {
				t.Errorf("%s at %v delivered after an event at %v", key, e.at, evs[i-1].at)
			}
			if e.kind == HardExpired && seen[e.spi] != SoftExpired {
				t.Errorf("%x: hard expiry before the soft one", e.spi)
			}
			seen[e.spi] = e.kind
		}
		if got := tab.life.len(); got != 0 {
			t.Errorf("%d SAs still queued after every deadline", got)
		}
		tab.Close()
	})
}

// TestLifeQueueEmptiedByClose: closing the table drops every pending limit
// and stops the timer.
func TestLifeQueueEmptiedByClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		tab := NewTable(Options{OnEvent: log.add})
		for k := range 10 {
			c := cfg(Outbound, uint32(0x2000+k), uint32(k+1))
			c.Hard = Lifetime{Time: time.Hour}
			if err := tab.InstallOutbound(mustSA(t, c)); err != nil {
				t.Fatal(err)
			}
		}
		tab.Close()
		if got := tab.life.len(); got != 0 {
			t.Fatalf("%d SAs queued after Close", got)
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if evs := log.get(); len(evs) != 0 {
			t.Fatalf("closed table raised %v", evs)
		}
	})
}

// TestLifetimeAccessors: Hard returns the hard lifetime as configured, Soft
// the soft one as the SA applies it (a volume limit the hard one undercuts
// or sets alone is the hard one's), and Created the creation time.
func TestLifetimeAccessors(t *testing.T) {
	created := time.Now().Add(-time.Minute)
	for _, tc := range []struct {
		name                string
		soft, hard, appSoft Lifetime
	}{
		{"none", Lifetime{}, Lifetime{}, Lifetime{}},
		{"soft below hard", Lifetime{Bytes: 10, Packets: 3, Time: time.Minute}, Lifetime{Bytes: 20, Packets: 9, Time: time.Hour},
			Lifetime{Bytes: 10, Packets: 3, Time: time.Minute}},
		{"hard undercuts soft", Lifetime{Bytes: 30, Packets: 3}, Lifetime{Bytes: 20, Packets: 9},
			Lifetime{Bytes: 20, Packets: 3}},
		{"hard only", Lifetime{}, Lifetime{Bytes: 20, Packets: 9, Time: time.Hour}, Lifetime{Bytes: 20, Packets: 9}},
		{"soft only", Lifetime{Bytes: 1 << 40, Time: time.Second}, Lifetime{}, Lifetime{Bytes: 1 << 40, Time: time.Second}},
	} {
		c := cfg(Outbound, 0x1000, 1)
		c.Soft, c.Hard, c.Created = tc.soft, tc.hard, created
		sa := mustSA(t, c)
		if got := sa.Hard(); got != tc.hard {
			t.Errorf("%s: Hard() = %+v, want %+v", tc.name, got, tc.hard)
		}
		if got := sa.Soft(); got != tc.appSoft {
			t.Errorf("%s: Soft() = %+v, want %+v", tc.name, got, tc.appSoft)
		}
		if got := sa.Created(); !got.Equal(created) {
			t.Errorf("%s: Created() = %v, want %v", tc.name, got, created)
		}
	}
	if got := mustSA(t, cfg(Inbound, 0x1001, 1)).Created(); time.Since(got) < 0 || time.Since(got) > time.Minute {
		t.Errorf("Created() of an SA without Config.Created = %v, want about now", got)
	}
}
