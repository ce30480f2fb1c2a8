package daemon

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/settings"
)

// countingIKE is a fakeIKE with the Manager's counters.
type countingIKE struct {
	fakeIKE
	c ike.Counters
}

func (f *countingIKE) Counters() ike.Counters { return f.c }

// TestGlobalStatus: the daemon's global section carries the IKE Manager's
// counters, the sockets' queue drops and the DoS settings.
func TestGlobalStatus(t *testing.T) {
	fi := &countingIKE{c: ike.Counters{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookiesSent: 1234, HalfOpenRefused: 17, QueueDrops: 3}}
	d := &Daemon{ike: fi, ikeSettings: settings.IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 200},
		ikeQueueDrops: func() uint64 { return 9 }}
	want := control.GlobalStatus{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookieThreshold: 30, CookieThresholdIP: 3,
		CookiesSent: 1234, HalfOpenRefused: 17, IKEQueueDrops: 9, IKESAQueueDrops: 3}
	if got := d.Global(); got != want {
		t.Errorf("Global() = %+v, want %+v", got, want)
	}
	// Without counters (an IKE fake) the settings still show.
	d = &Daemon{ike: &fakeIKE{}, ikeSettings: settings.IKESettings{HalfOpenLimit: 10000}}
	if got := d.Global(); got != (control.GlobalStatus{HalfOpenLimit: 10000}) {
		t.Errorf("Global() without counters = %+v", got)
	}
}

func TestOffIfZero(t *testing.T) {
	if offIfZero(0) != -1 || offIfZero(30) != 30 {
		t.Error("offIfZero: 0 must turn a threshold off, others pass through")
	}
}
