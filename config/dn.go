package config

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
)

// Distinguished names as strongSwan writes them in leftid=/rightid=/
// leftca=: "C=CH, O=strongSwan, CN=moon" (or "/C=CH/O=strongSwan/CN=moon"),
// relative distinguished names in the order of the DER encoding, which is
// the order a certificate's subject is shown by `pki --print` and
// `openssl x509 -nameopt RFC2253` reversed.

// dnAttrs maps the attribute names strongSwan accepts to their OIDs; the
// first name of each OID is the one FormatDN writes.
var dnAttrs = []struct {
	names []string
	oid   asn1.ObjectIdentifier
}{
	{[]string{"C"}, asn1.ObjectIdentifier{2, 5, 4, 6}},
	{[]string{"ST", "S"}, asn1.ObjectIdentifier{2, 5, 4, 8}},
	{[]string{"L"}, asn1.ObjectIdentifier{2, 5, 4, 7}},
	{[]string{"O"}, asn1.ObjectIdentifier{2, 5, 4, 10}},
	{[]string{"OU"}, asn1.ObjectIdentifier{2, 5, 4, 11}},
	{[]string{"CN"}, asn1.ObjectIdentifier{2, 5, 4, 3}},
	{[]string{"SN", "surname"}, asn1.ObjectIdentifier{2, 5, 4, 4}},
	{[]string{"serialNumber"}, asn1.ObjectIdentifier{2, 5, 4, 5}},
	{[]string{"street"}, asn1.ObjectIdentifier{2, 5, 4, 9}},
	{[]string{"T", "title"}, asn1.ObjectIdentifier{2, 5, 4, 12}},
	{[]string{"D", "description"}, asn1.ObjectIdentifier{2, 5, 4, 13}},
	{[]string{"postalCode"}, asn1.ObjectIdentifier{2, 5, 4, 17}},
	{[]string{"N", "name"}, asn1.ObjectIdentifier{2, 5, 4, 41}},
	{[]string{"G", "GN", "givenName"}, asn1.ObjectIdentifier{2, 5, 4, 42}},
	{[]string{"I", "initials"}, asn1.ObjectIdentifier{2, 5, 4, 43}},
	{[]string{"E", "emailAddress", "Email"}, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}},
	{[]string{"DC"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
	{[]string{"UID"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 1}},
}

// DNAttr is one attribute of a distinguished name, in encoding order.
type DNAttr struct {
	OID   asn1.ObjectIdentifier
	Value string
}

// ParseDN parses a distinguished name in strongSwan's text form. A value
// of "*" is a wildcard that MatchDN accepts for any value.
func ParseDN(s string) ([]DNAttr, error) {
	s = strings.TrimSpace(s)
	sep := byte(',')
	if strings.HasPrefix(s, "/") {
		sep, s = '/', s[1:]
	}
	var out []DNAttr
	for _, part := range splitUnescaped(s, sep) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("distinguished name part %q has no '='", part)
		}
		oid := dnOID(strings.TrimSpace(k))
		if oid == nil {
			return nil, fmt.Errorf("unknown attribute %q in distinguished name; use C, ST, L, O, OU, CN, E, DC, SN, GN, serialNumber or UID", strings.TrimSpace(k))
		}
		out = append(out, DNAttr{OID: oid, Value: unescapeDN(strings.TrimSpace(v))})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty distinguished name")
	}
	return out, nil
}

func dnOID(name string) asn1.ObjectIdentifier {
	for _, a := range dnAttrs {
		for _, n := range a.names {
			if strings.EqualFold(n, name) {
				return a.oid
			}
		}
	}
	return nil
}

func splitUnescaped(s string, sep byte) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

func unescapeDN(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if !strings.Contains(v, "\\") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// FormatDN renders a name in strongSwan's text form, in encoding order.
func FormatDN(attrs []DNAttr) string {
	parts := make([]string, len(attrs))
	for i, a := range attrs {
		name := a.OID.String()
		for _, x := range dnAttrs {
			if x.oid.Equal(a.OID) {
				name = x.names[0]
				break
			}
		}
		v := strings.ReplaceAll(a.Value, ",", `\,`)
		parts[i] = name + "=" + v
	}
	return strings.Join(parts, ", ")
}

// DNFromRDNs flattens a decoded name (a certificate's subject or issuer,
// or an ID_DER_ASN1_DN payload) into its attributes; values that are not
// strings are rendered as Go formats them, so that they match nothing
// written in a configuration by accident.
func DNFromRDNs(rdns pkix.RDNSequence) []DNAttr {
	var out []DNAttr
	for _, set := range rdns {
		for _, tv := range set {
			v, ok := tv.Value.(string)
			if !ok {
				v = fmt.Sprint(tv.Value)
			}
			out = append(out, DNAttr{OID: tv.Type, Value: v})
		}
	}
	return out
}

// ParseDERDN decodes a DER distinguished name.
func ParseDERDN(der []byte) ([]DNAttr, error) {
	var rdns pkix.RDNSequence
	rest, err := asn1.Unmarshal(der, &rdns)
	if err != nil {
		return nil, fmt.Errorf("distinguished name: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("distinguished name: %d bytes after the name", len(rest))
	}
	return DNFromRDNs(rdns), nil
}

// MarshalDN encodes a name as DER, one attribute per RDN (as strongSwan
// encodes a DN it read from text).
func MarshalDN(attrs []DNAttr) ([]byte, error) {
	rdns := make(pkix.RDNSequence, len(attrs))
	for i, a := range attrs {
		rdns[i] = []pkix.AttributeTypeAndValue{{Type: a.OID, Value: a.Value}}
	}
	return asn1.Marshal(rdns)
}

// MatchDN reports whether a configured name (which may hold "*" values)
// matches got: the same attributes in the same order, values compared
// without regard to ASCII case.
func MatchDN(configured, got []DNAttr) bool {
	if len(configured) != len(got) {
		return false
	}
	for i, c := range configured {
		if !c.OID.Equal(got[i].OID) {
			return false
		}
		if c.Value != "*" && !strings.EqualFold(c.Value, got[i].Value) {
			return false
		}
	}
	return true
}

// dnIdentityMatches compares two DN identities attribute by attribute,
// falling back to the text when either does not parse.
func dnIdentityMatches(configured, got Identity) bool {
	c, err1 := ParseDN(configured.Value)
	g, err2 := ParseDN(got.Value)
	if err1 != nil || err2 != nil {
		return configured.Value == got.Value
	}
	return MatchDN(c, g)
}

// Matches reports whether the identity got satisfies the configured
// identity id: Equal, or for distinguished names an attribute-wise match
// (blanks and case of values do not matter, "*" values are wildcards).
func (id Identity) Matches(got Identity) bool {
	if id.Type == IDDERASN1DN && got.Type == IDDERASN1DN {
		return dnIdentityMatches(id, got)
	}
	return id.Equal(got)
}
