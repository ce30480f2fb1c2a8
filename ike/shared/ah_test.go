package shared

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestAHProposals: AH offers carry INTEG and ESN and no ENCR (RFC 7296
// §3.3.3); a peer's AH proposal with an encryption transform is not
// acceptable; the answer renders without ENCR.
func TestAHProposals(t *testing.T) {
	cps, _, err := config.ParseProposals(config.ProtoAH, "sha256-sha1")
	if err != nil {
		t.Fatal(err)
	}
	ours := Offer(cps, ProtoAH, []byte{1, 2, 3, 4}, true)
	if len(ours) != 1 || len(ours[0].Of(transform.TypeENCR)) != 0 || len(ours[0].Of(transform.TypeINTEG)) != 2 || len(ours[0].Of(transform.TypeESN)) != 1 {
		t.Fatalf("offer %+v", ours)
	}
	peer := []Proposal{{Number: 1, Protocol: ProtoAH, Transforms: []transform.Transform{
		{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA1_96}, {Type: transform.TypeESN, ID: transform.ESNNo}}}}
	sel, ok := Select(ours, peer, ProtoAH, true, 0)
	if !ok || sel.Integ.ID != transform.IntegHMACSHA1_96 || sel.String() != "sha1" {
		t.Fatalf("Select: %v %v", sel, ok)
	}
	if p := sel.Proposal(ProtoAH, nil); len(p.Of(transform.TypeENCR)) != 0 || len(p.Transforms) != 2 {
		t.Errorf("answer %+v", p)
	}
	if _, ok := Accept(ours, []Proposal{sel.Proposal(ProtoAH, nil)}, ProtoAH, true); !ok {
		t.Error("Accept refused the answer to our own offer")
	}
	withEncr := []Proposal{{Number: 1, Protocol: ProtoAH, Transforms: append([]transform.Transform{
		{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 128}}, peer[0].Transforms...)}}
	if _, ok := Select(ours, withEncr, ProtoAH, true, 0); ok {
		t.Error("an AH proposal with ENCR was accepted")
	}
	if _, ok := Select(ours, peer, ProtoESP, true, 0); ok {
		t.Error("an AH proposal matched as ESP")
	}
}
