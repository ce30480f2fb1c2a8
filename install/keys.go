package install

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/transform"
)

// ChildKeys are the keys and parameters of one installed CHILD SA pair, as
// Wireshark's esp_sa table needs them (debugging only: ipsecgw
// export-keys). In is the SA the peer sends with (our inbound SPI).
type ChildKeys struct {
	Conn          string
	InSPI, OutSPI uint32
	// Local and Remote are the outer endpoints (ports with UDP
	// encapsulation).
	Local, Remote netip.AddrPort
	Encap         bool
	// AH is set for AH SAs (integrity only: Encr and the Encr keys are
	// empty).
	AH                                 bool
	Encr, Integ                        transform.Transform
	InEncr, InInteg, OutEncr, OutInteg []byte
}

// Wipe clears the key copies.
func (k *ChildKeys) Wipe() { wipe(k.InEncr, k.InInteg, k.OutEncr, k.OutInteg) }

// ExportKeys returns copies of the keys of every installed CHILD SA, by
// inbound SPI. The caller wipes them when done. The keys come from the SAs'
// ciphers (the installer keeps no copy of its own): a direction whose SA has
// already been replaced and wiped (the outbound SA of a rekeyed pair that IKE
// has not deleted yet) is exported without keys.
func (in *Installer) ExportKeys() []ChildKeys {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]ChildKeys, 0, len(in.children))
	for _, ch := range in.children {
		inEncr, inInteg := ch.in.Keys()
		outEncr, outInteg := ch.out.Keys()
		out = append(out, ChildKeys{
			Conn: ch.conn, InSPI: ch.inSPI, OutSPI: ch.outSPI,
			Local: ch.out.Local(), Remote: ch.out.Remote(), Encap: ch.out.UDPEncap(), AH: ch.out.Proto() == sad.AH,
			Encr: ch.encr, Integ: ch.integ,
			InEncr: inEncr, InInteg: inInteg, OutEncr: outEncr, OutInteg: outInteg,
		})
	}
	slices.SortFunc(out, func(a, b ChildKeys) int { return cmp.Compare(a.InSPI, b.InSPI) })
	return out
}

// ChildLimits returns the hard lifetime in bytes and packets of the CHILD
// SA with our inbound SPI inSPI (zero fields: no limit); its time limit is
// IKE's.
func (in *Installer) ChildLimits(inSPI uint32) (hard sad.Lifetime, ok bool) {
	in.mu.Lock()
	ch, ok := in.children[inSPI]
	in.mu.Unlock()
	if !ok {
		return sad.Lifetime{}, false
	}
	return ch.in.Hard(), true
}
