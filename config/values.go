package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

// ParseDuration reads a time value: a number with an optional s/m/h/d unit
// (seconds without one, as in both strongSwan and Libreswan: dpddelay=30).
// Decimal values are accepted ("1.5h"). It is exported because the time
// values of the daemon settings (ipsecgw.yaml) are written the same way.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty time value")
	}
	unit := time.Second
	switch s[len(s)-1] {
	case 's':
		s = s[:len(s)-1]
	case 'm':
		unit, s = time.Minute, s[:len(s)-1]
	case 'h':
		unit, s = time.Hour, s[:len(s)-1]
	case 'd':
		unit, s = 24*time.Hour, s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) || strings.ContainsAny(s, "eExXpP_+-") {
		return 0, fmt.Errorf("%q is not a time value; write seconds or a number with s, m, h or d (e.g. 3600, 60m, 1h)", orig)
	}
	d := f * float64(unit)
	if d > float64(MaxLifetime) {
		return 0, fmt.Errorf("time value larger than %v", MaxLifetime)
	}
	return time.Duration(d).Round(time.Millisecond), nil
}

// parseSize reads a byte or packet count with an optional k/m/g/t suffix
// (powers of 1024, as strongSwan's swanctl does), e.g. lifebytes=4g.
func parseSize(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	orig := s
	mult := uint64(1)
	s = strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b")
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mult = 1 << 10
		case 'm', 'M':
			mult = 1 << 20
		case 'g', 'G':
			mult = 1 << 30
		case 't', 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a count; write a number with an optional k, m, g or t suffix", orig)
	}
	if n > math.MaxUint64/mult {
		return 0, fmt.Errorf("%q is too large", orig)
	}
	return n * mult, nil
}

// parseBool reads yes/no (and the true/false, 1/0 spellings both
// daemons accept).
func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes", "true", "1", "on":
		return true, nil
	case "no", "false", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", s)
}

var protoNumbers = map[string]uint8{"icmp": 1, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "sctp": 132}

// parseProtoPort reads "proto/port" as in leftprotoport=17/1701 or the
// [tcp/80] suffix of a subnet: proto is a name, a number or %any; port a
// number, a range "lo-hi", %any or absent.
func parseProtoPort(s string) (proto uint8, lo, hi uint16, err error) {
	lo, hi = 0, 65535
	protoS, portS, _ := strings.Cut(s, "/")
	protoS = strings.ToLower(strings.TrimSpace(protoS))
	switch {
	case protoS == "" || protoS == "%any":
	case protoNumbers[protoS] != 0:
		proto = protoNumbers[protoS]
	default:
		n, e := strconv.ParseUint(protoS, 10, 8)
		if e != nil {
			return 0, 0, 0, fmt.Errorf("unknown protocol %q (use a name like tcp, udp, icmp or a number)", protoS)
		}
		proto = uint8(n)
	}
	portS = strings.TrimSpace(portS)
	if portS == "" || portS == "%any" {
		return proto, lo, hi, nil
	}
	if portS == "%opaque" {
		return proto, 0xffff, 0, nil
	}
	if a, b, ok := strings.Cut(portS, "-"); ok {
		l, e1 := strconv.ParseUint(a, 10, 16)
		h, e2 := strconv.ParseUint(b, 10, 16)
		if e1 != nil || e2 != nil || l > h {
			return 0, 0, 0, fmt.Errorf("bad port range %q", portS)
		}
		return proto, uint16(l), uint16(h), nil
	}
	p, e := strconv.ParseUint(portS, 10, 16)
	if e != nil {
		return 0, 0, 0, fmt.Errorf("bad port %q", portS)
	}
	return proto, uint16(p), uint16(p), nil
}

// parseSubnet reads one subnet: "10.0.0.0/24", "2001:db8::/64", a bare
// address (a /32 or /128), optionally followed by "[proto/port]".
func parseSubnet(s string) (spd.TS, error) {
	s = strings.TrimSpace(s)
	ts := spd.TS{Ports: spd.AllPorts}
	if i := strings.IndexByte(s, '['); i >= 0 {
		if !strings.HasSuffix(s, "]") {
			return ts, fmt.Errorf("%q: missing ] after the protocol/port", s)
		}
		var err error
		ts.Protocol, ts.Ports.From, ts.Ports.To, err = parseProtoPort(s[i+1 : len(s)-1])
		if err != nil {
			return ts, fmt.Errorf("%q: %v", s, err)
		}
		s = strings.TrimSpace(s[:i])
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return ts, fmt.Errorf("%q is not a subnet (write address/prefix-length, e.g. 10.1.0.0/16)", s)
		}
		if p.Addr().Zone() != "" {
			return ts, fmt.Errorf("%q: zones are not allowed in subnets", s)
		}
		if p.Masked() != p {
			return ts, fmt.Errorf("%q has host bits set; the network is %s", s, p.Masked())
		}
		prefix := netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		if p.Addr().Is4In6() {
			prefix = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		ts.Range = spd.PrefixRange(prefix)
		return ts, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return ts, fmt.Errorf("%q is not a subnet or address", s)
	}
	a = a.Unmap()
	ts.Range = spd.AddrRange{From: a, To: a}
	return ts, nil
}

// splitList splits a comma list ("a,b"), a Libreswan brace list ("{a b}")
// or a blank-separated list.
func splitList(s string) []string {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	f := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	return f
}
