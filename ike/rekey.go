package ike

import (
	"encoding/binary"
	"fmt"

	"github.com/ipsecgw/ipsecgw/ike/message"
	"github.com/ipsecgw/ipsecgw/transform"
)

// RekeyedIKELinger is how long an IKE SA replaced by a rekey waits for the
// peer's DELETE before it is dropped anyway.
const rekeyedIKELinger = DefaultHalfOpenTimeout * 2

// respondRekeyIKE is the responder side of IKE SA rekeying (RFC 7296
// §1.3.2, §2.18): a new IKE SA with fresh SPIs, nonces and key exchange,
// keyed from the old SK_d, inherits every CHILD SA. The peer, which
// initiated the rekey, is the original initiator of the new SA and deletes
// the old one.
func (sa *ikeSA) respondRekeyIKE(id uint32, in []message.RawPayload, peerSA message.SA, ni []byte) {
	reply := func(ps ...message.Payload) { sa.sendResponse(message.CREATE_CHILD_SA, id, ps) }
	kp, ok := payload(in, message.PayloadKE)
	ke, _, err := message.ParseKE(kp.Body)
	if !ok || err != nil {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	ours := wireProposals(sa.conn.IKE, message.ProtoIKE, nil, false)
	sel, ok := selectProposal(ours, peerSA.Proposals, message.ProtoIKE, false, ke.Group)
	if !ok {
		sa.log.Warn("IKE SA rekey: no acceptable proposal", "peer", proposalsString(peerSA.Proposals), "ours", proposalsString(ours))
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	var spiI uint64
	for _, p := range peerSA.Proposals {
		if p.Number == sel.Number && p.Protocol == message.ProtoIKE && len(p.SPI) == 8 {
			spiI = binary.BigEndian.Uint64(p.SPI)
		}
	}
	if spiI == 0 {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	if sel.KE.ID != ke.Group {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
		reply(message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]})
		return
	}
	kx, err := transform.NewKeyExchange(sel.KE.ID)
	if err != nil {
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	gir, err := kx.SharedSecret(ke.Data)
	pub := kx.PublicKey()
	defer kx.Close()
	if err != nil {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	defer clear(gir)
	nsa, err := sa.m.newSA(false, sa.local, sa.remote)
	if err != nil {
		reply(message.Notify{Type: message.NO_ADDITIONAL_SAS})
		return
	}
	nr := newNonce()
	seed := message.RekeySKEYSEED(sa.prf, sa.keys.SKd, gir, ni, nr)
	defer clear(seed)
	prf, err := transform.NewPRF(sel.PRF.ID)
	var keys message.IKEKeys
	if err == nil {
		keys, err = message.DeriveIKEKeys(prf, sel.Encr, sel.Integ, seed, ni, nr, spiI, nsa.spiR)
	}
	var out, inP *transform.Protector
	if err == nil {
		out, inP, err = keys.Protectors(sel.Encr, sel.Integ, false)
	}
	if err != nil {
		keys.Zero()
		sa.log.Warn("IKE SA rekey: key derivation", "err", err)
		nsa.post(func() { nsa.destroy() })
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	// Hand everything over to the new SA; from now on the old one only
	// answers retransmissions and waits for the peer's DELETE.
	children, conns := sa.children, sa.conns
	for _, ch := range children {
		ch.stopTimers()
	}
	sa.children, sa.conns = nil, map[string]bool{}
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	sa.m.setPeerConn(sa, nil)
	old := *sa // values only, read before the new loop starts using them
	nsa.post(func() {
		nsa.spiI = spiI
		nsa.alg, nsa.prf, nsa.keys, nsa.out, nsa.in = sel, prf, keys, out, inP
		nsa.conn, nsa.candidates, nsa.conns = old.conn, old.candidates, conns
		nsa.localID, nsa.remoteID = old.localID, old.remoteID
		nsa.natLocal, nsa.natRemote, nsa.fragmentation = old.natLocal, old.natRemote, old.fragmentation
		nsa.ni, nsa.nr = ni, nr
		nsa.children = children
		for _, ch := range children {
			nsa.armChildTimers(ch)
		}
		nsa.establish()
		nsa.m.sameIdentities(nsa, old.peerKey)
		for _, ch := range children {
			nsa.m.setState(ch.conn.Name, StateEstablished)
		}
		nsa.log.Info("IKE SA rekeyed", "old_spi", fmt.Sprintf("%016x", old.ourSPI()))
	})
	reply(
		message.SA{Proposals: []message.Proposal{sel.wire(message.ProtoIKE, binary.BigEndian.AppendUint64(nil, nsa.spiR))}},
		message.Nonce{Data: nr},
		message.KE{Group: sel.KE.ID, Data: pub},
	)
	sa.state = saDeleting
	sa.openTimer = sa.after(rekeyedIKELinger, func() { sa.destroy() })
}
