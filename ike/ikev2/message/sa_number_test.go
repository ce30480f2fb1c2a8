package message

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestSAProposalNumbers: an answer carries the number of the proposal it
// accepted (strongSwan picking our second ESP proposal answers with
// number 2); an offer must still start at 1.
func TestSAProposalNumbers(t *testing.T) {
	esp := func(n uint8) Proposal {
		return Proposal{Number: n, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
			{Transform: transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128}},
			{Transform: transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo}},
		}}
	}
	answer := AppendSA(nil, SA{Proposals: []Proposal{esp(2)}})
	got, _, err := ParseSA(answer)
	if err != nil || len(got.Proposals) != 1 || got.Proposals[0].Number != 2 {
		t.Errorf("answer with proposal 2: %+v, %v", got, err)
	}
	offer := AppendSA(nil, SA{Proposals: []Proposal{esp(2), esp(3)}})
	if _, _, err := ParseSA(offer); err == nil {
		t.Error("an offer starting at proposal 2 was accepted")
	}
}
