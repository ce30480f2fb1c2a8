package message

import (
	"encoding/binary"

	"github.com/ipsecgw/ipsecgw/transform"
)

// IKE_INTERMEDIATE authentication (RFC 9242 §3.3.2). IKE_AUTH signs, on
// top of RFC 7296's octets, a MAC chain over every IKE_INTERMEDIATE
// message of the SA: each one is taken as if it were neither encrypted
// nor fragmented, that is its IKE header and Encrypted payload header
// with lengths that count only the plaintext inner payloads, followed by
// those payloads:
//
//	IntAuth_i1 = prf(SK_pi1,              IntAuth_i1_A | IntAuth_i1_P)
//	IntAuth_iN = prf(SK_piN, IntAuth_iN-1 | IntAuth_iN_A | IntAuth_iN_P)
//	IntAuth_r*   likewise over the responses, with SK_pr
//	IntAuth    = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID
//
// where SK_pX is the key in force when that message was protected.

// intermediateAuthData renders IntAuth_*_A | IntAuth_*_P of a message with
// header h whose inner payload chain, starting with type next, is plain.
func intermediateAuthData(h Header, next PayloadType, plain []byte) []byte {
	h.NextPayload = PayloadSK
	out := make([]byte, 0, HeaderLen+GenericHeaderLen+len(plain))
	out = AppendHeader(out, h)
	binary.BigEndian.PutUint32(out[24:], uint32(HeaderLen+GenericHeaderLen+len(plain)))
	out = append(out, byte(next), 0, 0, 0)
	binary.BigEndian.PutUint16(out[HeaderLen+2:], uint16(GenericHeaderLen+len(plain)))
	return append(out, plain...)
}

// IntermediateAuthDataOf is the authenticated data of an IKE_INTERMEDIATE
// message we send with header h and these inner payloads.
func IntermediateAuthDataOf(h Header, inner ...Payload) []byte {
	return intermediateAuthData(h, firstType(inner, PayloadNone), appendChain(nil, inner, PayloadNone))
}

// IntermediateAuthDataOfMessage is the authenticated data of a received,
// decrypted (or reassembled) IKE_INTERMEDIATE message.
func IntermediateAuthDataOfMessage(m *Message) []byte {
	return intermediateAuthData(m.Header, m.InnerNext, m.Plain)
}

// ChainIntAuth extends one direction's IntAuth chain (prev is nil for the
// first message) with the authenticated data of the next message, under
// the SK_pi or SK_pr in force for it.
func ChainIntAuth(f transform.PRF, skp, prev, data []byte) []byte {
	return prf(f, nil, skp, prev, data)
}

// IntAuth is what IKE_AUTH's signed octets end with after IKE_INTERMEDIATE
// exchanges: the last links of both chains and IKE_AUTH's message ID.
func IntAuth(intI, intR []byte, authMsgID uint32) []byte {
	out := make([]byte, 0, len(intI)+len(intR)+4)
	out = append(append(out, intI...), intR...)
	return binary.BigEndian.AppendUint32(out, authMsgID)
}
