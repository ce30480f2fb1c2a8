package ikev2

import (
	"encoding/hex"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// wireID encodes an identity as an ID payload (RFC 7296 §3.5).
func wireID(id config.Identity, responder bool) (message.ID, bool) {
	x := message.ID{Responder: responder}
	switch id.Type {
	case config.IDIPv4:
		a := id.Addr.Unmap().As4()
		x.Type, x.Data = message.IDIPv4Addr, a[:]
	case config.IDIPv6:
		a := id.Addr.As16()
		x.Type, x.Data = message.IDIPv6Addr, a[:]
	case config.IDFQDN:
		x.Type, x.Data = message.IDFQDN, []byte(id.Value)
	case config.IDRFC822:
		x.Type, x.Data = message.IDRFC822Addr, []byte(id.Value)
	case config.IDKeyID:
		b, err := hex.DecodeString(id.Value)
		if err != nil {
			return x, false
		}
		x.Type, x.Data = message.IDKeyID, b
	case config.IDDERASN1DN:
		dn, err := config.ParseDN(id.Value)
		if err != nil {
			return x, false
		}
		der, err := config.MarshalDN(dn)
		if err != nil {
			return x, false
		}
		x.Type, x.Data = message.IDDERASN1DN, der
	default:
		return x, false
	}
	return x, true
}

// configID decodes a received ID payload into a config identity for
// matching and secret lookup.
func configID(x message.ID) (config.Identity, bool) {
	switch x.Type {
	case message.IDIPv4Addr, message.IDIPv6Addr:
		a, ok := netip.AddrFromSlice(x.Data)
		if !ok {
			return config.Identity{}, false
		}
		return shared.EffectiveID(config.Identity{}, a), true
	case message.IDFQDN:
		return config.Identity{Type: config.IDFQDN, Value: string(x.Data)}, true
	case message.IDRFC822Addr:
		return config.Identity{Type: config.IDRFC822, Value: string(x.Data)}, true
	case message.IDKeyID:
		return config.Identity{Type: config.IDKeyID, Value: hex.EncodeToString(x.Data)}, true
	case message.IDDERASN1DN:
		dn, err := config.ParseDERDN(x.Data)
		if err != nil || len(dn) == 0 {
			return config.Identity{}, false
		}
		return config.Identity{Type: config.IDDERASN1DN, Value: config.FormatDN(dn)}, true
	}
	return config.Identity{}, false
}
