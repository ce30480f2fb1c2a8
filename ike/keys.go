package ike

import (
	"context"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// IKEKeys are the keys of one IKE SA (see shared.IKEKeys).
type IKEKeys = shared.IKEKeys

// ExportKeys collects the keys of every IKE SA whose engine can export
// them (shared.KeyExporter) and that has derived them, for `ipsecgw
// export-keys` (debugging with Wireshark). It waits for the SAs' loops
// until ctx ends and returns what it got by then. The caller owns the
// copies and should clear them when done.
func (m *Manager) ExportKeys(ctx context.Context) []IKEKeys {
	type answer struct {
		k  IKEKeys
		ok bool
	}
	sas := m.allSAs()
	answers := make(chan answer, len(sas))
	asked := 0
	for _, sa := range sas {
		x, ok := sa.(shared.KeyExporter)
		if !ok {
			continue
		}
		asked++
		go func() {
			if !x.ExportKeys(func(k IKEKeys, ok bool) { answers <- answer{k, ok} }) {
				answers <- answer{} // the SA ended meanwhile
			}
		}()
	}
	var out []IKEKeys
	for range asked {
		select {
		case a := <-answers:
			if a.ok {
				out = append(out, a.k)
			}
		case <-ctx.Done():
			return out
		}
	}
	return out
}
