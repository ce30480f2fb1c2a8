package daemon

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
)

// keepaliveTargets are the peers that NAT keepalives go to: one per IKE
// SA whose own side is behind a NAT (RFC 3948 §2.3 — only the NATed side
// needs to keep its mapping open), at the address and port the IKE SA
// currently uses, which is the NAT-T port the ESP-in-UDP flows through.
// Conns sharing an IKE SA (and so a peer) get one keepalive.
func keepaliveTargets(sts []ike.ConnStatus) []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, st := range sts {
		if st.State != ike.StateEstablished || !st.NATLocal || !st.Remote.IsValid() || seen[st.Remote] {
			continue
		}
		seen[st.Remote] = true
		out = append(out, st.Remote)
	}
	return out
}

// runKeepalives sends a NAT keepalive to every keepalive target each
// interval until stop is closed. strongSwan sends them only when nothing
// else went out for the interval; sending them regardless costs one byte
// per peer per interval and keeps this loop off the packet path.
func runKeepalives(stop <-chan struct{}, every time.Duration, status func() []ike.ConnStatus, send func(netip.AddrPort) error, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, dst := range keepaliveTargets(status()) {
			if err := send(dst); err != nil {
				log.Debug("NAT keepalive not sent", "remote", dst, "err", err)
			}
		}
	}
}

// sendKeepalive sends one NAT keepalive from the NAT-T socket of dst's
// family.
func (s *sockets) sendKeepalive(dst netip.AddrPort) error {
	if dst.Addr().Unmap().Is4() {
		return s.v4.SendKeepalive(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()))
	}
	if s.v6 == nil {
		return fmt.Errorf("no IPv6 socket open for %s", dst)
	}
	return s.v6.SendKeepalive(dst)
}
