package isakmp

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestPhase2AH: our AH offer (ah=) is one AH proposal with the transform
// ID of each hash and the matching Authentication Algorithm; read back as
// a peer's offer it selects as AH; wrong or missing attributes are
// refused.
func TestPhase2AH(t *testing.T) {
	ps := proposals(t, config.ProtoAH, "sha256-sha1-modp2048")
	sa, pfs, err := Phase2SA(ps, 0xc0010203, EncapTunnel, Lifetime{Seconds: 3600})
	if err != nil || pfs != transform.KEMODP2048 {
		t.Fatalf("Phase2SA: %v, pfs %v", err, pfs)
	}
	p := sa.Proposals[0]
	if p.Protocol != ProtoAH || len(p.Transforms) != 2 || p.Transforms[0].ID != AHSHA256 || p.Transforms[1].ID != AHSHA {
		t.Fatalf("AH proposal %+v", p)
	}
	offers, refused, err := Phase2Offers(sa)
	if err != nil || len(refused) != 0 || len(offers) != 2 {
		t.Fatalf("Phase2Offers: %v %+v", err, refused)
	}
	ours := shared.Offer(ps, shared.ProtoAH, nil, false)
	sel, ok := shared.Select(ours, Proposals2(offers), shared.ProtoAH, false, 0)
	if !ok || sel.Integ.ID != transform.IntegHMACSHA2_256_128 || sel.KE.ID != transform.KEMODP2048 || sel.Encr != (transform.Transform{}) {
		t.Fatalf("Select: %v %v", sel, ok)
	}
	if _, ok := shared.Select(shared.Offer(proposals(t, config.ProtoESP, "aes128-sha256-modp2048"), shared.ProtoESP, nil, false), Proposals2(offers), shared.ProtoESP, false, 0); ok {
		t.Error("an AH offer selected for an ESP conn")
	}
	ah := func(id TransformID, attrs ...Attribute) SA {
		s := p2(id, attrs...)
		s.Proposals[0].Protocol = ProtoAH
		return s
	}
	sha256 := BasicAttr(P2AuthAlgorithm, uint16(AuthAlgHMACSHA2256))
	for _, tt := range []struct {
		name string
		sa   SA
		want error
		text string
	}{
		{"AH_SHA2-256 without the authentication algorithm", ah(AHSHA256), ErrAttributesNotSupported, "without the authentication algorithm"},
		{"AH_SHA with HMAC-SHA2-256", ah(AHSHA, sha256), ErrAttributesNotSupported, "another hash"},
		{"AH with a key length", ah(AHSHA256, sha256, BasicAttr(P2KeyLength, 128)), ErrAttributesNotSupported, "key length"},
		{"AH_DES", ah(AHDES, sha256), ErrInvalidTransformID, "AH transform 4"},
	} {
		_, refused, err := Phase2Offers(tt.sa)
		if !errors.Is(err, ErrNoProposalChosen) || len(refused) != 1 || !errors.Is(refused[0].Err, tt.want) || !strings.Contains(refused[0].Err.Error(), tt.text) {
			t.Errorf("%s: err %v, refused %+v; want %v mentioning %q", tt.name, err, refused, tt.want, tt.text)
		}
	}
}

// TestPhase2AHXCBC: ah=aesxcbc is offered in IKEv1 as AH_AES-XCBC-MAC
// (transform ID 9) with Authentication Algorithm AES-XCBC-MAC (9), and
// such an offer selects AES-XCBC-MAC-96.
func TestPhase2AHXCBC(t *testing.T) {
	ps := proposals(t, config.ProtoAH, "aesxcbc")
	sa, _, err := Phase2SA(ps, 0xc0010203, EncapTransport, Lifetime{Seconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	tr := sa.Proposals[0].Transforms
	if len(tr) != 1 || tr[0].ID != AHXCBC {
		t.Fatalf("AH transforms %+v, want AH_AES-XCBC-MAC", tr)
	}
	offers, refused, err := Phase2Offers(sa)
	if err != nil || len(refused) != 0 || len(offers) != 1 {
		t.Fatalf("Phase2Offers: %v %+v", err, refused)
	}
	sel, ok := shared.Select(shared.Offer(ps, shared.ProtoAH, nil, false), Proposals2(offers), shared.ProtoAH, false, 0)
	if !ok || sel.Integ.ID != transform.IntegAESXCBC96 {
		t.Fatalf("Select: %v %v", sel, ok)
	}
}
