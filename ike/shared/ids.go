package shared

import (
	"net/netip"
	"slices"

	"github.com/ipsecgw/ipsecgw/config"
)

// EffectiveID is the identity an end presents: the configured one, or its
// address when none is configured (strongSwan's default).
func EffectiveID(id config.Identity, addr netip.Addr) config.Identity {
	if id.Type != config.IDAny {
		return id
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return config.Identity{Type: config.IDIPv4, Addr: addr}
	}
	return config.Identity{Type: config.IDIPv6, Addr: addr}
}

// IDMatches reports whether a received identity satisfies a configured
// one (%any accepts everything; "*@example.com"/"*.example.com" wildcards,
// compared without regard to ASCII case: IDs are names on the wire, and
// Unicode folding would let look-alike characters match).
func IDMatches(configured, got config.Identity) bool {
	if configured.Type == config.IDAny {
		return true
	}
	if configured.Matches(got) {
		return true
	}
	if (configured.Type == config.IDFQDN || configured.Type == config.IDRFC822) && configured.Type == got.Type &&
		len(configured.Value) > 1 && configured.Value[0] == '*' {
		suf := configured.Value[1:]
		return len(got.Value) >= len(suf) && asciiEqualFold(got.Value[len(got.Value)-len(suf):], suf)
	}
	return false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	lower := func(c byte) byte {
		if 'A' <= c && c <= 'Z' {
			return c + 'a' - 'A'
		}
		return c
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}

// NameSet is a small set of conn names, in the order they were added. An
// IKE SA serves one conn, or a few with the same peer: a map for them
// cost about 250 bytes per SA, a quarter of an idle SA's budget.
type NameSet []string

// Has reports whether name is in the set.
func (s NameSet) Has(name string) bool { return slices.Contains(s, name) }

// Add puts name in the set.
func (s *NameSet) Add(name string) {
	if !s.Has(name) {
		*s = append(*s, name)
	}
}

// Remove takes name out of the set.
func (s *NameSet) Remove(name string) {
	if i := slices.Index(*s, name); i >= 0 {
		*s = slices.Delete(*s, i, i+1)
	}
}
