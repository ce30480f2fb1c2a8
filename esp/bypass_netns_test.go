package esp

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// inNS runs f on a thread inside namespace ns; sockets f creates stay in
// it. The thread returns to its original namespace afterwards and only if
// that fails exits locked (so the runtime discards it). Exiting locked is
// not the default because the lab starts its processes with Pdeathsig,
// which fires when the *thread* that forked them ends: discarding a thread
// would kill whichever charon or iperf3 it happened to start.
func inNS(ns string, f func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer orig.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		err = f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// TestNetnsBypass: gw1 routes host2's LAN into our TUN; the SPD says
// bypass for ICMP, so the dataplane sends those packets in clear through a
// ClearSender whose mark selects a routing table without the TUN route.
// Ping works; after an SPD swap to "drop" it stops, and the drops are
// counted.
func TestNetnsBypass(t *testing.T) {
	if os.Geteuid() != 0 {
		requireInterop(t, "the netns test needs root")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const mark = "0x99"
	for _, cmd := range [][]string{
		{"ip", "rule", "add", "fwmark", mark, "lookup", "100", "priority", "100"},
		{"ip", "route", "add", l.GW2.LAN.String(), "via", l.GW2.Addr.String(), "table", "100"},
	} {
		if _, err := l.GW1.Run(ctx, cmd...); err != nil {
			t.Fatal(err)
		}
	}
	// Replies come back in clear.
	if _, err := l.GW2.Run(ctx, "ip", "route", "add", l.GW1.LAN.String(), "via", l.GW1.Addr.String()); err != nil {
		t.Fatal(err)
	}
	dev, err := tun.Create(tun.Config{Name: "ipsecgw0", NetNS: "/run/netns/" + l.GW1.NS})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.AddRoute(l.GW2.LAN); err != nil {
		t.Fatal(err)
	}
	var cs *ClearSender
	if err := inNS(l.GW1.NS, func() (err error) { cs, err = NewClearSender(0x99); return err }); err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	icmp := spd.Selector{Local: spd.PrefixRange(l.GW1.LAN), Remote: spd.PrefixRange(l.GW2.LAN), Protocol: 1,
		LocalPorts: spd.PortRange{From: 0, To: 0xffff}, RemotePorts: spd.PortRange{From: 0, To: 0xffff}}
	bypass, err := spd.Compile([]spd.Rule{{Selector: icmp, Action: spd.Bypass}})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := spd.Compile([]spd.Rule{{Selector: icmp, Action: spd.Drop}})
	if err != nil {
		t.Fatal(err)
	}
	live := &spd.Live{}
	live.Store(bypass)
	dp, err := New(Config{TUN: dev, SAD: sad.NewTable(sad.Options{}), SPD: live, Clear: cs.Send,
		NewSender: func() Sender { return &countSender{} }})
	if err != nil {
		t.Fatal(err)
	}
	dp.Start()
	defer dp.Close()
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 3); err != nil {
		t.Fatalf("ping with bypass policy: %v (stats %+v, clear errors %d)", err, dp.Stats(), cs.Errors())
	}
	if st := dp.Stats(); st.Bypassed < 3 || st.TxPackets != 0 {
		t.Fatalf("stats %+v", st)
	}
	live.Store(drop)
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 2); err == nil {
		t.Fatal("ping passed although the SPD now says drop")
	}
	if st := dp.Stats(); st.Drops[sad.DropPolicy] < 2 {
		t.Fatalf("policy drops not counted: %+v", st)
	}
}
