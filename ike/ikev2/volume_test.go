package ikev2

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

// TestSoftLimit checks the volume rekey threshold: life - margin - fuzz,
// a tenth of the limit as margin when none is set, none without a limit or
// with rekey=no.
func TestSoftLimit(t *testing.T) {
	c := config.Conn{Rekey: true}
	if got := softLimit(&c, 0, 10); got != 0 {
		t.Errorf("no limit: soft %d, want 0", got)
	}
	if got := softLimit(&c, 1000, 100); got != 900 {
		t.Errorf("1000/100, no fuzz: soft %d, want 900", got)
	}
	if got := softLimit(&c, 1000, 0); got != 900 {
		t.Errorf("1000, no margin: soft %d, want 900 (a tenth as margin)", got)
	}
	if got := softLimit(&c, 1000, 5000); got != 1 {
		t.Errorf("margin above life: soft %d, want 1", got)
	}
	c.RekeyFuzz = 100
	for range 200 {
		if got := softLimit(&c, 1000, 100); got < 800 || got > 900 {
			t.Fatalf("1000/100 with 100%% fuzz: soft %d outside [800, 900]", got)
		}
	}
	if got := softLimit(&config.Conn{}, 1000, 100); got != 0 {
		t.Errorf("rekey=no: soft %d, want 0", got)
	}
}

// TestLosesCollision: the SA of a second rekey exchange is the redundant
// one (installed without taking the outbound direction) exactly when its
// lowest nonce is below the lowest nonce of the first successor.
func TestLosesCollision(t *testing.T) {
	old := &child{}
	if losesCollision(old, []byte{1}, []byte{2}) {
		t.Errorf("no collision without a first successor")
	}
	old.successors = []*child{{minNonce: []byte{5, 0}}}
	cases := []struct {
		ni, nr []byte
		want   bool
	}{
		{[]byte{4, 9}, []byte{9, 9}, true},  // lowest 4,9 < 5,0
		{[]byte{9, 9}, []byte{4, 9}, true},  // the responder's nonce counts too
		{[]byte{6, 0}, []byte{5, 1}, false}, // lowest 5,1 > 5,0
		{[]byte{7, 0}, []byte{8, 0}, false},
	}
	for _, c := range cases {
		if got := losesCollision(old, c.ni, c.nr); got != c.want {
			t.Errorf("ni %x nr %x against %x: loses %v, want %v", c.ni, c.nr, old.successors[0].minNonce, got, c.want)
		}
	}
	old.successors = append(old.successors, &child{minNonce: []byte{0}})
	if losesCollision(old, []byte{0}, []byte{0}) {
		t.Errorf("a third successor is not a collision of two")
	}
}
