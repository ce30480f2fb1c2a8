package config

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
)

// IDType is the IKEv2 identification type (RFC 7296 section 3.5), plus
// IDAny for strongSwan's %any wildcard.
type IDType uint8

// Identification types.
const (
	IDAny       IDType = 0
	IDIPv4      IDType = 1
	IDFQDN      IDType = 2
	IDRFC822    IDType = 3 // user@fqdn
	IDIPv6      IDType = 5
	IDDERASN1DN IDType = 9
	IDKeyID     IDType = 11
)

func (t IDType) String() string {
	switch t {
	case IDAny:
		return "any"
	case IDIPv4:
		return "ipv4"
	case IDFQDN:
		return "fqdn"
	case IDRFC822:
		return "rfc822"
	case IDIPv6:
		return "ipv6"
	case IDDERASN1DN:
		return "asn1dn"
	case IDKeyID:
		return "keyid"
	}
	return fmt.Sprintf("id(%d)", uint8(t))
}

// Identity is an IKE identity. For IP identities Addr is set; for key IDs
// Value is the lower-case hex of the key ID; otherwise Value is the text.
type Identity struct {
	Type  IDType
	Value string
	Addr  netip.Addr
}

// String renders the identity in ipsec.conf syntax.
func (id Identity) String() string {
	switch id.Type {
	case IDAny:
		return "%any"
	case IDIPv4, IDIPv6:
		return id.Addr.String()
	case IDFQDN:
		return "@" + id.Value
	case IDRFC822:
		return id.Value
	case IDKeyID:
		return "@#" + id.Value
	}
	return id.Value
}

// Equal compares identities; FQDN and e-mail domains compare without case.
func (id Identity) Equal(o Identity) bool {
	if id.Type != o.Type {
		return false
	}
	switch id.Type {
	case IDIPv4, IDIPv6:
		return id.Addr == o.Addr
	case IDFQDN, IDRFC822:
		return strings.EqualFold(id.Value, o.Value)
	}
	return id.Value == o.Value
}

// ParseIdentity parses leftid/rightid and ipsec.secrets selectors with
// strongSwan's rules: an IP address, "@fqdn" (taken literally, never
// resolved), "@@user@fqdn", "@#hex" key ID, "user@fqdn", typed prefixes
// ("fqdn:", "dns:", "email:", "rfc822:", "userfqdn:", "keyid:", "ipv4:",
// "ipv6:", "asn1dn:"), a distinguished name ("C=CH, O=..."), %any/%any6,
// or else a plain FQDN.
func ParseIdentity(s string) (Identity, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Identity{}, fmt.Errorf("empty identity")
	}
	if s == "%any" || s == "%any6" || s == "0.0.0.0" || s == "::" {
		return Identity{Type: IDAny}, nil
	}
	if i := strings.IndexByte(s, ':'); i > 0 && !strings.Contains(s[:i], "=") {
		prefix, rest := strings.ToLower(s[:i]), s[i+1:]
		switch prefix {
		case "fqdn", "dns":
			return fqdnID(rest)
		case "email", "rfc822", "userfqdn":
			return rfc822ID(rest)
		case "keyid":
			return keyID(strings.TrimPrefix(strings.TrimPrefix(rest, "#"), "0x"))
		case "ipv4", "ipv6":
			a, err := netip.ParseAddr(rest)
			if err != nil || (prefix == "ipv4") != a.Is4() {
				return Identity{}, fmt.Errorf("%q is not an %s address", rest, prefix)
			}
			return ipID(a), nil
		case "asn1dn":
			return Identity{Type: IDDERASN1DN, Value: rest}, nil
		}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Identity{}, fmt.Errorf("identity %q: zones are not allowed", s)
		}
		return ipID(a), nil
	}
	switch {
	case strings.HasPrefix(s, "@#"):
		return keyID(s[2:])
	case strings.HasPrefix(s, "@@"):
		return rfc822ID(s[2:])
	case strings.HasPrefix(s, "@"):
		return fqdnID(s[1:])
	case strings.Contains(s, "="):
		return Identity{Type: IDDERASN1DN, Value: s}, nil
	case strings.Contains(s, "@"):
		return rfc822ID(s)
	}
	return fqdnID(s)
}

func ipID(a netip.Addr) Identity {
	a = a.Unmap()
	if a.Is4() {
		return Identity{Type: IDIPv4, Addr: a}
	}
	return Identity{Type: IDIPv6, Addr: a}
}

func fqdnID(s string) (Identity, error) {
	if s == "" || strings.ContainsAny(s, " \t@") {
		return Identity{}, fmt.Errorf("%q is not a valid FQDN identity", s)
	}
	return Identity{Type: IDFQDN, Value: s}, nil
}

func rfc822ID(s string) (Identity, error) {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t") {
		return Identity{}, fmt.Errorf("%q is not a valid user@fqdn identity", s)
	}
	return Identity{Type: IDRFC822, Value: s}, nil
}

func keyID(h string) (Identity, error) {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) == 0 {
		return Identity{}, fmt.Errorf("key ID %q is not an even number of hex digits", h)
	}
	return Identity{Type: IDKeyID, Value: hex.EncodeToString(b)}, nil
}

// matchLevel ranks how well a selector matches an identity, following
// strongSwan's id_match_t: a perfect match beats a wildcard one, which
// beats %any. 0 means no match.
func matchLevel(selector, id Identity) int {
	switch {
	case selector.Type == IDAny || id.Type == IDAny:
		// An unknown peer ID (%any, e.g. a responder conn) is matched by
		// every selector, at the lowest level.
		return 1
	case selector.Equal(id):
		return 3
	case (selector.Type == IDFQDN || selector.Type == IDRFC822) && selector.Type == id.Type && strings.HasPrefix(selector.Value, "*"):
		// "*@example.com" / "*.example.com" wildcards.
		if strings.HasSuffix(strings.ToLower(id.Value), strings.ToLower(selector.Value[1:])) {
			return 2
		}
	}
	return 0
}
