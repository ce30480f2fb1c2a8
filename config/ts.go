package config

import "github.com/ipsecgw/ipsecgw/spd"

// TS is the selector as IKE and the dataplane use it: the subnet as an
// address range, with its protocol and ports.
func (ts TrafficSelector) TS() spd.TS {
	return spd.TS{Range: spd.PrefixRange(ts.Prefix), Protocol: ts.Proto, Ports: spd.PortRange{From: ts.PortLo, To: ts.PortHi}}
}

// SubnetTS converts a list of configured subnets (leftsubnet=).
func SubnetTS(ts []TrafficSelector) []spd.TS {
	out := make([]spd.TS, len(ts))
	for i, t := range ts {
		out[i] = t.TS()
	}
	return out
}
