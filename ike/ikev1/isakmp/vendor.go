package isakmp

import "strings"

// Well-known Vendor IDs. Where a value is the MD5 hash of a text, the
// text is named and vendor_test.go recomputes it; the values were checked
// against the table of strongSwan's IKEv1 task
// (src/libcharon/sa/ikev1/tasks/isakmp_vendor.c), which is what strongSwan
// 5.9 sends and recognises.
const (
	// VendorDPD announces RFC 3706 dead peer detection (RFC 3706 §4,
	// version 1.0 in the last two bytes).
	VendorDPD = "\xaf\xca\xd7\x13\x68\xa1\xf1\xc9\x6b\x86\x96\xfc\x77\x57\x01\x00"
	// VendorNATT is RFC 3947 NAT traversal: MD5("RFC 3947").
	VendorNATT = "\x4a\x13\x1c\x81\x07\x03\x58\x45\x5c\x57\x28\xf2\x0e\x95\x45\x2f"
	// VendorNATTDraft03 is MD5("draft-ietf-ipsec-nat-t-ike-03").
	VendorNATTDraft03 = "\x7d\x94\x19\xa6\x53\x10\xca\x6f\x2c\x17\x9d\x92\x15\x52\x9d\x56"
	// VendorNATTDraft02 is MD5("draft-ietf-ipsec-nat-t-ike-02").
	VendorNATTDraft02 = "\xcd\x60\x46\x43\x35\xdf\x21\xf8\x7c\xfd\xb2\xfc\x68\xb6\xa4\x48"
	// VendorNATTDraft02N is MD5("draft-ietf-ipsec-nat-t-ike-02\n"), the
	// draft's Vendor ID as some implementations computed it, with the
	// newline.
	VendorNATTDraft02N = "\x90\xcb\x80\x91\x3e\xbb\x69\x6e\x08\x63\x81\xb5\xec\x42\x7b\x1f"
	// VendorXAUTH announces XAUTH: the first 8 bytes of
	// MD5("draft-ietf-ipsra-isakmp-xauth-06.txt").
	VendorXAUTH = "\x09\x00\x26\x89\xdf\xd6\xb7\x12"
	// VendorCiscoUnity is the first 14 bytes of MD5("CISCO-UNITY")
	// followed by major and minor version (1.0); peers vary the last two
	// bytes, so it is matched as a prefix.
	VendorCiscoUnity = "\x12\xf5\xf2\x8c\x45\x71\x68\xa9\x70\x2d\x9f\xe2\x74\xcc\x01\x00"
	// VendorStrongSwan is MD5("strongSwan"), sent by strongSwan only when
	// charon.send_vendor_id is set.
	VendorStrongSwan = "\x88\x2f\xe5\x6d\x6f\xd2\x0d\xbc\x22\x51\x61\x3b\x2e\xbe\x5b\xeb"
	// VendorFragmentation announces the proprietary IKEv1 fragmentation
	// of Cisco and Microsoft (payload type 132): MD5("FRAGMENTATION")
	// followed by four capability bytes (0x80000000: main and aggressive
	// mode messages); matched on its first 16 bytes.
	VendorFragmentation = "\x40\x48\xb7\xd5\x6e\xbc\xe8\x85\x25\xe7\xde\x7f\x00\xd6\xc2\xd3\x80\x00\x00\x00"
	// VendorMSNT5 is Windows' "MS NT5 ISAKMPOAKLEY" followed by a version
	// number; matched on its first 16 bytes.
	VendorMSNT5 = "\x1e\x2b\x51\x69\x05\x99\x1c\x7d\x7c\x96\xfc\xbf\xb5\x87\xe4\x61\x00\x00\x00\x00"
)

// Vendor names a recognised Vendor ID.
type Vendor uint8

// Recognised Vendor IDs.
const (
	VendorUnknown Vendor = iota
	VendorIsDPD
	VendorIsNATT
	VendorIsNATTDraft03
	VendorIsNATTDraft02
	VendorIsNATTDraft02N
	VendorIsXAUTH
	VendorIsCiscoUnity
	VendorIsStrongSwan
	VendorIsFragmentation
	VendorIsMSNT5
)

var vendorNames = [...]string{"unknown", "DPD", "NAT-T (RFC 3947)", "draft-ietf-ipsec-nat-t-ike-03",
	"draft-ietf-ipsec-nat-t-ike-02", "draft-ietf-ipsec-nat-t-ike-02\\n", "XAUTH", "Cisco Unity",
	"strongSwan", "FRAGMENTATION", "MS NT5 ISAKMPOAKLEY"}

func (v Vendor) String() string {
	if int(v) < len(vendorNames) {
		return vendorNames[v]
	}
	return "unknown"
}

// vendorIDs lists each recognised Vendor ID with how many leading bytes
// must match (the whole value unless the rest is a version).
var vendorIDs = []struct {
	v      Vendor
	id     string
	prefix int
}{
	{VendorIsDPD, VendorDPD, 0},
	{VendorIsNATT, VendorNATT, 0},
	{VendorIsNATTDraft03, VendorNATTDraft03, 0},
	{VendorIsNATTDraft02, VendorNATTDraft02, 0},
	{VendorIsNATTDraft02N, VendorNATTDraft02N, 0},
	{VendorIsXAUTH, VendorXAUTH, 0},
	{VendorIsCiscoUnity, VendorCiscoUnity, 14},
	{VendorIsStrongSwan, VendorStrongSwan, 0},
	{VendorIsFragmentation, VendorFragmentation, 16},
	{VendorIsMSNT5, VendorMSNT5, 16},
}

// ClassifyVendorID names a received Vendor ID.
func ClassifyVendorID(data []byte) Vendor {
	for _, k := range vendorIDs {
		if k.prefix == 0 {
			if string(data) == k.id {
				return k.v
			}
		} else if len(data) >= k.prefix && strings.HasPrefix(string(data), k.id[:k.prefix]) {
			return k.v
		}
	}
	return VendorUnknown
}

// NATTVersion is the flavour of NAT traversal two peers share, decided
// from the Vendor IDs of phase 1 messages 1 and 2.
type NATTVersion uint8

// NAT traversal versions, worst to best.
const (
	NATTNone NATTVersion = iota
	// NATTDraft02 and NATTDraft03 are draft-ietf-ipsec-nat-t-ike-02 and
	// -03: NAT-D and NAT-OA payload types 130 and 131, encapsulation modes
	// 61443 and 61444, otherwise as the RFC (port 4500 with the non-ESP
	// marker).
	NATTDraft02
	NATTDraft03
	// NATTRFC3947 uses payload types 20 and 21 and encapsulation modes 3
	// and 4.
	NATTRFC3947
)

func (v NATTVersion) draft() bool { return v == NATTDraft02 || v == NATTDraft03 }

func (v NATTVersion) String() string {
	switch v {
	case NATTDraft02:
		return "draft-ietf-ipsec-nat-t-ike-02"
	case NATTDraft03:
		return "draft-ietf-ipsec-nat-t-ike-03"
	case NATTRFC3947:
		return "RFC 3947"
	}
	return "none"
}

// NATDType is the payload type to send NAT-D payloads with.
func (v NATTVersion) NATDType() PayloadType {
	if v.draft() {
		return PayloadNATDDraft
	}
	return PayloadNATD
}

// Draft reports whether NAT-D and NAT-OA payloads go with the draft
// payload types (set NATD.Draft and NATOA.Draft to it).
func (v NATTVersion) Draft() bool { return v.draft() }

// NATTFromVendorIDs returns the best NAT traversal version announced by
// the Vendor ID payloads of a message (as strongSwan chooses: RFC 3947
// over draft 03 over draft 02, with or without the newline).
func NATTFromVendorIDs(vids []RawPayload) NATTVersion {
	best := NATTNone
	for _, p := range vids {
		if p.Type != PayloadVID {
			continue
		}
		v := NATTNone
		switch ClassifyVendorID(p.Body) {
		case VendorIsNATT:
			v = NATTRFC3947
		case VendorIsNATTDraft03:
			v = NATTDraft03
		case VendorIsNATTDraft02, VendorIsNATTDraft02N:
			v = NATTDraft02
		}
		best = max(best, v)
	}
	return best
}

// NATTVendorIDs are the NAT traversal Vendor ID payloads an initiator
// sends in its first message, so that RFC and draft peers alike find
// theirs: strongSwan 5.9 sends RFC 3947 and draft-02\n; draft-03 and
// draft-02 are added for peers that recognise only those. A responder
// answers with the one Vendor ID of the version it chose (VendorIDFor).
func NATTVendorIDs() []VendorID {
	return []VendorID{{Data: []byte(VendorNATT)}, {Data: []byte(VendorNATTDraft03)},
		{Data: []byte(VendorNATTDraft02N)}, {Data: []byte(VendorNATTDraft02)}}
}

// VendorIDFor returns the Vendor ID that announces NAT traversal version
// v (for a responder's answer).
func VendorIDFor(v NATTVersion) (VendorID, bool) {
	switch v {
	case NATTRFC3947:
		return VendorID{Data: []byte(VendorNATT)}, true
	case NATTDraft03:
		return VendorID{Data: []byte(VendorNATTDraft03)}, true
	case NATTDraft02:
		return VendorID{Data: []byte(VendorNATTDraft02)}, true
	}
	return VendorID{}, false
}
