package isakmp

import (
	"encoding/hex"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/spd"
)

// Quick mode traffic selectors travel as ID payloads (RFC 2409 §5.5:
// IDci and IDcr, "client identities"): an address, subnet or range, an IP
// protocol and one port, where 0 means all. spd.TS is the engines'
// selector type; the conversions below map between the two without loss
// for everything an ID payload can say.

// IDFromTS encodes a traffic selector as a quick mode ID payload, as
// strongSwan does: a single address as ID_IPV4_ADDR/ID_IPV6_ADDR, a range
// that is one prefix as *_ADDR_SUBNET, any other range as *_ADDR_RANGE.
// The port range must be all ports or a single port other than 0, since
// the ID payload has one port field in which 0 means all
// (INVALID-ID-INFORMATION otherwise).
func IDFromTS(ts spd.TS) (ID, error) {
	from, to := ts.Range.From, ts.Range.To
	if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || to.Less(from) {
		return ID{}, newErr(INVALID_ID_INFORMATION, -1, "selector "+ts.String()+" has no valid address range")
	}
	x := ID{Protocol: ts.Protocol}
	switch {
	case ts.Ports == spd.AllPorts:
	case ts.Ports.From == ts.Ports.To && ts.Ports.From != 0:
		x.Port = ts.Ports.From
	default:
		return ID{}, newErr(INVALID_ID_INFORMATION, -1, "selector "+ts.String()+": IKEv1 IDs hold one port or all of them")
	}
	v4 := from.Is4()
	switch ps := (spd.AddrRange{From: from, To: to}).Prefixes(); {
	case from == to:
		x.Type = pick(v4, IDIPv4Addr, IDIPv6Addr)
		x.Data = from.AsSlice()
	case len(ps) == 1:
		x.Type = pick(v4, IDIPv4AddrSubnet, IDIPv6AddrSubnet)
		x.Data = append(from.AsSlice(), mask(ps[0].Bits(), from.BitLen())...)
	default:
		x.Type = pick(v4, IDIPv4AddrRange, IDIPv6AddrRange)
		x.Data = append(from.AsSlice(), to.AsSlice()...)
	}
	return x, nil
}

func pick(v4 bool, a, b IDType) IDType {
	if v4 {
		return a
	}
	return b
}

// mask returns the netmask of a prefix length as address bytes.
func mask(bits, total int) []byte {
	m := make([]byte, total/8)
	for i := range m {
		switch {
		case bits >= 8:
			m[i] = 0xff
			bits -= 8
		case bits > 0:
			m[i] = byte(0xff << (8 - bits))
			bits = 0
		}
	}
	return m
}

// prefixLen returns the length of a contiguous netmask, or false.
func prefixLen(m []byte) (int, bool) {
	n := 0
	for i, c := range m {
		if c == 0xff {
			n += 8
			continue
		}
		ones := 0
		for c&0x80 != 0 {
			ones++
			c <<= 1
		}
		if c != 0 {
			return 0, false
		}
		for _, r := range m[i+1:] {
			if r != 0 {
				return 0, false
			}
		}
		return n + ones, true
	}
	return n, true
}

// TS decodes a quick mode ID payload as a traffic selector. A subnet's
// mask must be contiguous, its address is masked (as strongSwan does with
// sloppy peers); a range must not run backwards. Names are not selectors:
// any other ID type is INVALID-ID-INFORMATION.
func (x ID) TS() (spd.TS, error) {
	ts := spd.TS{Protocol: x.Protocol, Ports: spd.AllPorts}
	if x.Port != 0 {
		ts.Ports = spd.Port(x.Port)
	}
	if n, ok := idDataLen[x.Type]; !ok || len(x.Data) != n {
		return spd.TS{}, newErr(INVALID_ID_INFORMATION, -1, x.Type.String()+" is not a traffic selector")
	}
	half := len(x.Data) / 2
	switch x.Type {
	case IDIPv4Addr, IDIPv6Addr:
		a, _ := netip.AddrFromSlice(x.Data)
		ts.Range = spd.AddrRange{From: a, To: a}
	case IDIPv4AddrSubnet, IDIPv6AddrSubnet:
		a, _ := netip.AddrFromSlice(x.Data[:half])
		bits, ok := prefixLen(x.Data[half:])
		if !ok {
			return spd.TS{}, newErr(INVALID_ID_INFORMATION, -1, "subnet mask is not contiguous")
		}
		ts.Range = spd.PrefixRange(netip.PrefixFrom(a, bits).Masked())
	case IDIPv4AddrRange, IDIPv6AddrRange:
		a, _ := netip.AddrFromSlice(x.Data[:half])
		b, _ := netip.AddrFromSlice(x.Data[half:])
		if b.Less(a) {
			return spd.TS{}, newErr(INVALID_ID_INFORMATION, -1, "address range runs backwards")
		}
		ts.Range = spd.AddrRange{From: a, To: b}
	}
	return ts, nil
}

// IDFromIdentity encodes a configured identity as a phase 1 ID payload,
// with Protocol ID and Port zero (RFC 2407 §4.6.2 allows zero or UDP/500;
// zero is what strongSwan sends). ASN.1 distinguished names need a DER
// encoder and only make sense with certificates; PSK conns use addresses,
// FQDNs, user FQDNs and key IDs.
func IDFromIdentity(id config.Identity) (ID, error) {
	switch a := id.Addr.Unmap(); id.Type {
	case config.IDIPv4:
		if !a.Is4() {
			return ID{}, newErr(INVALID_ID_INFORMATION, -1, "IPv4 identity without an IPv4 address")
		}
		return ID{Type: IDIPv4Addr, Data: a.AsSlice()}, nil
	case config.IDIPv6:
		if !id.Addr.Is6() {
			return ID{}, newErr(INVALID_ID_INFORMATION, -1, "IPv6 identity without an IPv6 address")
		}
		return ID{Type: IDIPv6Addr, Data: id.Addr.AsSlice()}, nil
	case config.IDFQDN:
		return ID{Type: IDFQDN, Data: []byte(id.Value)}, nil
	case config.IDRFC822:
		return ID{Type: IDUserFQDN, Data: []byte(id.Value)}, nil
	case config.IDKeyID:
		b, err := hex.DecodeString(id.Value)
		if err != nil || len(b) == 0 {
			return ID{}, newErr(INVALID_ID_INFORMATION, -1, "key ID is not hex")
		}
		return ID{Type: IDKeyID, Data: b}, nil
	}
	return ID{}, newErr(INVALID_ID_INFORMATION, -1, "identity type "+id.Type.String()+" cannot be sent in IKEv1 with pre-shared keys")
}

// Identity decodes a phase 1 ID payload for matching against configured
// identities and looking up the pre-shared key. Protocol and port are not
// part of the identity.
func (x ID) Identity() (config.Identity, error) {
	switch x.Type {
	case IDIPv4Addr, IDIPv6Addr:
		if n := idDataLen[x.Type]; len(x.Data) == n {
			a, _ := netip.AddrFromSlice(x.Data)
			a = a.Unmap()
			if a.Is4() {
				return config.Identity{Type: config.IDIPv4, Addr: a}, nil
			}
			return config.Identity{Type: config.IDIPv6, Addr: a}, nil
		}
	case IDFQDN:
		if len(x.Data) > 0 {
			return config.Identity{Type: config.IDFQDN, Value: string(x.Data)}, nil
		}
	case IDUserFQDN:
		if len(x.Data) > 0 {
			return config.Identity{Type: config.IDRFC822, Value: string(x.Data)}, nil
		}
	case IDKeyID:
		if len(x.Data) > 0 {
			return config.Identity{Type: config.IDKeyID, Value: hex.EncodeToString(x.Data)}, nil
		}
	default:
		return config.Identity{}, newErr(INVALID_ID_INFORMATION, -1, x.Type.String()+" is not supported as a phase 1 identity with pre-shared keys")
	}
	return config.Identity{}, newErr(INVALID_ID_INFORMATION, -1, "empty or malformed "+x.Type.String())
}
