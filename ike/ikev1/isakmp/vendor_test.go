package isakmp

import (
	"crypto/md5"
	"testing"
)

// TestVendorIDValues recomputes the Vendor IDs that are MD5 hashes of a
// text (the texts as strongSwan's isakmp_vendor.c and the drafts name
// them); DPD's value is given literally by RFC 3706 §4.
func TestVendorIDValues(t *testing.T) {
	sum := func(s string) string { h := md5.Sum([]byte(s)); return string(h[:]) }
	tests := []struct {
		name, got, want string
	}{
		{"RFC 3947", VendorNATT, sum("RFC 3947")},
		{"draft-03", VendorNATTDraft03, sum("draft-ietf-ipsec-nat-t-ike-03")},
		{"draft-02", VendorNATTDraft02, sum("draft-ietf-ipsec-nat-t-ike-02")},
		{"draft-02\\n", VendorNATTDraft02N, sum("draft-ietf-ipsec-nat-t-ike-02\n")},
		{"XAUTH", VendorXAUTH, sum("draft-ietf-ipsra-isakmp-xauth-06.txt")[:8]},
		{"Cisco Unity", VendorCiscoUnity[:14], sum("CISCO-UNITY")[:14]},
		{"strongSwan", VendorStrongSwan, sum("strongSwan")},
		{"FRAGMENTATION", VendorFragmentation[:16], sum("FRAGMENTATION")},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: %x, want %x", tt.name, tt.got, tt.want)
		}
	}
	if len(VendorDPD) != 16 || VendorDPD[14:] != "\x01\x00" {
		t.Errorf("DPD %x", VendorDPD)
	}
}

func TestClassifyVendorID(t *testing.T) {
	tests := []struct {
		data string
		want Vendor
	}{
		{VendorDPD, VendorIsDPD},
		{VendorNATT, VendorIsNATT},
		{VendorNATTDraft02N, VendorIsNATTDraft02N},
		{VendorXAUTH, VendorIsXAUTH},
		{VendorCiscoUnity[:14] + "\x01\x01", VendorIsCiscoUnity},
		{VendorFragmentation[:16], VendorIsFragmentation},
		{VendorMSNT5[:16] + "\x00\x00\x00\x09", VendorIsMSNT5},
		{VendorDPD[:15], VendorUnknown},
		{"", VendorUnknown},
	}
	for _, tt := range tests {
		if got := ClassifyVendorID([]byte(tt.data)); got != tt.want {
			t.Errorf("%x: %v, want %v", tt.data, got, tt.want)
		}
	}
}

func TestNATTFromVendorIDs(t *testing.T) {
	vid := func(s string) RawPayload { return RawPayload{Type: PayloadVID, Body: []byte(s)} }
	tests := []struct {
		vids []RawPayload
		want NATTVersion
	}{
		{nil, NATTNone},
		{[]RawPayload{vid(VendorDPD)}, NATTNone},
		{[]RawPayload{vid(VendorNATTDraft02N)}, NATTDraft02},
		{[]RawPayload{vid(VendorNATTDraft02), vid(VendorNATTDraft03)}, NATTDraft03},
		{[]RawPayload{vid(VendorNATTDraft03), vid(VendorNATT), vid(VendorNATTDraft02)}, NATTRFC3947},
		{[]RawPayload{{Type: PayloadHash, Body: []byte(VendorNATT)}}, NATTNone},
	}
	for _, tt := range tests {
		if got := NATTFromVendorIDs(tt.vids); got != tt.want {
			t.Errorf("%v: %v, want %v", tt.vids, got, tt.want)
		}
	}
	if NATTRFC3947.NATDType() != PayloadNATD || NATTDraft02.NATDType() != PayloadNATDDraft || !NATTDraft03.Draft() {
		t.Error("NAT-D payload type per version")
	}
	var ours []RawPayload
	for _, v := range NATTVendorIDs() {
		ours = append(ours, RawPayload{Type: PayloadVID, Body: v.Data})
	}
	if NATTFromVendorIDs(ours) != NATTRFC3947 {
		t.Error("our own Vendor IDs announce RFC 3947")
	}
	for _, v := range []NATTVersion{NATTDraft02, NATTDraft03, NATTRFC3947} {
		x, ok := VendorIDFor(v)
		if !ok || NATTFromVendorIDs([]RawPayload{{Type: PayloadVID, Body: x.Data}}) != v {
			t.Errorf("VendorIDFor(%v)", v)
		}
	}
}
