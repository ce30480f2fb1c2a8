package ikev1

import (
	"bytes"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// What main and aggressive mode share (strongSwan's phase1.c): Vendor
// IDs, NAT detection, the key exchange and key derivation, identities and
// PSK lookup, and the establishment of the ISAKMP SA.

// VendorID announces that we prefer ESP in UDP (shared.EncapAuto), as the
// IKEv2 engine's does: two ipsecgw daemons then fake a NAT so that ESP
// runs in UDP with GSO/GRO. Readable text, so that captures show who sent
// it.
var VendorID = []byte("ipsecgw: ESP in UDP preferred")

// p1 is the state main and aggressive mode keep for one phase 1: the
// initiator's SA payload body (SAi_b, hashed by HASH_I and HASH_R), the
// key exchange and both public values, the nonce bodies, and what the
// peer announced.
type p1 struct {
	saIBody  []byte
	ke       transform.KeyExchange
	gxi, gxr []byte
	ni, nr   []byte
	// ipsecgwPeer: the peer sent our Vendor ID; fakeNAT: our own NAT-D
	// hash is random (ESP in UDP without a NAT).
	ipsecgwPeer bool
	fakeNAT     bool
	// initialContact: the peer sent INITIAL-CONTACT with its
	// authentication; sentIC: we did.
	initialContact, sentIC bool
}

func (p *p1) closeKE() {
	if p.ke != nil {
		p.ke.Close()
		p.ke = nil
	}
}

// newKE starts our side of the key exchange.
func (p *p1) newKE(g transform.ID) error {
	p.closeKE()
	ke, err := transform.NewKeyExchange(g)
	if err != nil {
		return failure(shared.CauseConfig, "key exchange group %s: %v", transform.Transform{Type: transform.TypeKE, ID: g}, err)
	}
	p.ke = ke
	return nil
}

// vendorIDs are the Vendor ID payloads of our first phase 1 message: DPD
// (we always answer R-U-THERE), NAT traversal (every version as
// initiator, the chosen one as responder) and ipsecgw's.
func (sa *isakmpSA) vendorIDs() []isakmp.Payload {
	ps := []isakmp.Payload{isakmp.VendorID{Data: []byte(isakmp.VendorDPD)}}
	if sa.initiator {
		for _, v := range isakmp.NATTVendorIDs() {
			ps = append(ps, v)
		}
	} else if v, ok := isakmp.VendorIDFor(sa.natt); ok {
		ps = append(ps, v)
	}
	if sa.e.cfg.Encapsulation == shared.EncapAuto {
		ps = append(ps, isakmp.VendorID{Data: VendorID})
	}
	return ps
}

// learnVendorIDs takes what the peer's Vendor IDs announce: DPD, the NAT
// traversal version (as responder the best both speak, as initiator the
// one the responder chose) and whether it is ipsecgw.
func (sa *isakmpSA) learnVendorIDs(p *p1, m *isakmp.Message) {
	vids := m.Find(isakmp.PayloadVID)
	sa.natt = isakmp.NATTFromVendorIDs(vids)
	for _, v := range vids {
		if isakmp.ClassifyVendorID(v.Body) == isakmp.VendorIsDPD {
			sa.peerDPD = true
		}
		if bytes.Equal(v.Body, VendorID) {
			p.ipsecgwPeer = true
		}
	}
	// Faking needs NAT-D payloads, which only a NAT-T peer reads.
	p.fakeNAT = sa.natt != isakmp.NATTNone && sa.forceUDP(p)
	if p.fakeNAT {
		sa.natLocal = true
	}
}

// forceUDP reports whether we make the peer see a NAT (a random NAT-D
// hash of our own address, as strongSwan's forceencaps=yes) so that ESP
// goes in UDP although no NAT is there.
func (sa *isakmpSA) forceUDP(p *p1) bool {
	switch {
	case sa.conn.ForceEncaps, sa.e.cfg.Encapsulation == shared.EncapUDP:
		return true
	default:
		return sa.e.cfg.Encapsulation == shared.EncapAuto && p.ipsecgwPeer
	}
}

// natdPayloads are our NAT-D payloads (RFC 3947 §3.2): the hash of the
// receiver's address and port as we see them first, then our own (random
// when we fake a NAT). None when the peer does not speak NAT-T.
func (sa *isakmpSA) natdPayloads(p *p1) []isakmp.Payload {
	if sa.natt == isakmp.NATTNone {
		return nil
	}
	draft := sa.natt.Draft()
	own := sa.suite.NATDHash(sa.ckyI, sa.ckyR, sa.local)
	if p.fakeNAT {
		rand.Read(own)
	}
	return []isakmp.Payload{
		isakmp.NATD{Draft: draft, Hash: sa.suite.NATDHash(sa.ckyI, sa.ckyR, sa.remote)},
		isakmp.NATD{Draft: draft, Hash: own},
	}
}

// checkNATD compares the peer's NAT-D payloads with what we see: the
// first is the hash of our address as the peer sees it (a mismatch means
// we are translated), the others the peer's own (none matching the
// address its message came from means the peer is translated). A peer
// that sends none is taken as not translated. Our faked NAT counts as
// ours (learnVendorIDs set it).
func (sa *isakmpSA) checkNATD(m *isakmp.Message) {
	var hashes [][]byte
	for _, pl := range m.Payloads {
		if pl.Type == isakmp.PayloadNATD || pl.Type == isakmp.PayloadNATDDraft {
			hashes = append(hashes, pl.Body)
		}
	}
	if len(hashes) > 0 {
		if !bytes.Equal(hashes[0], sa.suite.NATDHash(sa.ckyI, sa.ckyR, sa.local)) {
			sa.natLocal = true
		}
		want := sa.suite.NATDHash(sa.ckyI, sa.ckyR, sa.remote)
		if !slices.ContainsFunc(hashes[1:], func(h []byte) bool { return bytes.Equal(h, want) }) {
			sa.natRemote = true
		}
	}
}

// floatPorts moves the initiator to port 4500 once a NAT is detected
// (RFC 3947 §4: from main mode message 5, aggressive mode message 3).
func (sa *isakmpSA) floatPorts() {
	if (sa.natLocal || sa.natRemote) && sa.remote.Port() == 500 {
		sa.local = portOf(sa.local, 4500)
		sa.remote = portOf(sa.remote, 4500)
	}
}

// selection1 is a phase 1 offer's algorithms as a selection (status,
// failure texts).
func selection1(p shared.Proposal) shared.Selection {
	var s shared.Selection
	for _, t := range p.Transforms {
		switch t.Type {
		case transform.TypeENCR:
			s.Encr = t
		case transform.TypePRF:
			s.PRF = t
		case transform.TypeINTEG:
			s.Integ = t
		case transform.TypeKE:
			s.KE = t
		}
	}
	return s
}

// phase1Lifetime is the ISAKMP SA's lifetime: ours, or the one the
// chosen transform names when that is shorter.
func phase1Lifetime(c config.Conn, life isakmp.Lifetime) time.Duration {
	d := c.IKELifetime
	if s := time.Duration(life.Seconds) * time.Second; s > 0 && (d <= 0 || s < d) {
		d = s
	}
	return d
}

// setAlgorithms records the negotiated phase 1 algorithms and prepares
// the suite (the hash makes the NAT-D payloads before the keys exist).
func (sa *isakmpSA) setAlgorithms(sel shared.Selection) error {
	suite, err := keymat.NewSuite(sel.Encr, sel.PRF.ID)
	if err != nil {
		return failure(shared.CauseInternal, "phase 1 algorithms %s: %v", sel, err)
	}
	sa.alg, sa.suite = sel, suite
	return nil
}

// deriveKeys computes SKEYID and the ISAKMP SA's keys from the PSK, the
// key exchange and the nonces, and starts the IV chain (RFC 2409 §5,
// Appendix B).
func (sa *isakmpSA) deriveKeys(p *p1, psk []byte) error {
	peer := p.gxr
	if !sa.initiator {
		peer = p.gxi
	}
	gxy, err := p.ke.SharedSecret(peer)
	if err != nil {
		return failure(shared.CausePeerRefused, "peer's key exchange value is invalid: %v", err)
	}
	defer clear(gxy)
	keys, err := keymat.DerivePSK(sa.suite, psk, p.ni, p.nr, gxy, sa.ckyI, sa.ckyR)
	if err != nil {
		return failure(shared.CauseInternal, "phase 1 key derivation: %v", err)
	}
	sa.keys = keys
	sa.iv = sa.suite.NewIVChain(p.gxi, p.gxr, 0)
	return nil
}

// idPayload encodes one of our identities for phase 1.
func idPayload(id config.Identity) (isakmp.ID, error) {
	x, err := isakmp.IDFromIdentity(id)
	if err != nil {
		return isakmp.ID{}, failure(shared.CauseConfig, "our ID %s cannot be used with a PSK in IKEv1 (use an address, FQDN, user@FQDN or key ID)", id)
	}
	return x, nil
}

// peerIdentity decodes the peer's phase 1 ID payload.
func peerIdentity(body []byte) (config.Identity, error) {
	x, _, err := isakmp.ParseID(body)
	if err != nil {
		return config.Identity{}, refusal(isakmp.INVALID_ID_INFORMATION, shared.CausePeerRefused, "peer's ID payload is malformed")
	}
	id, err := x.Identity()
	if err != nil {
		return config.Identity{}, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseIDMismatch, "peer uses an ID of type %s, which PSK conns cannot match", x.Type)
	}
	return id, nil
}

// configuredRemoteID is the identity a conn expects of its peer for the
// PSK lookup: rightid=, else the peer's configured address (strongSwan's
// default rightid), else %any.
func configuredRemoteID(c config.Conn) config.Identity {
	if c.Remote.ID.Type == config.IDAny && c.Remote.Addr.IsValid() && !c.Remote.Addr.IsUnspecified() {
		return shared.EffectiveID(c.Remote.ID, c.Remote.Addr)
	}
	return c.Remote.ID
}

// mainModePSK finds the PSK a main mode responder uses before it knows
// the peer's identity (message 3, encrypted identities come in message
// 5): as strongSwan does, the first candidate conn whose configured IDs
// have a PSK, else a PSK for the two IP addresses. It returns the PSK and
// the conn it came from (nil for the addresses).
func (sa *isakmpSA) mainModePSK(cands []config.Conn) ([]byte, *config.Conn) {
	for i, c := range cands {
		if psk, ok := sa.e.host.PSK(shared.EffectiveID(c.Local.ID, sa.local.Addr()), configuredRemoteID(c)); ok {
			return psk, &cands[i]
		}
	}
	psk, ok := sa.e.host.PSK(shared.EffectiveID(config.Identity{}, sa.local.Addr()), shared.EffectiveID(config.Identity{}, sa.remote.Addr()))
	if !ok {
		return nil, nil
	}
	return psk, nil
}

// acceptsPhase1 reports whether a conn's ike= proposals accept the
// selected phase 1 algorithms.
func acceptsPhase1(c config.Conn, sel shared.Selection) bool {
	ours := shared.Offer(c.IKE, shared.ProtoIKE, nil, false)
	p := shared.Proposal{Number: 1, Protocol: shared.ProtoIKE, Transforms: []transform.Transform{sel.Encr, sel.PRF, sel.Integ, sel.KE}}
	_, ok := shared.Select(ours, []shared.Proposal{p}, shared.ProtoIKE, false, 0)
	return ok
}

// selectPhase1 picks, as strongSwan's responder does, the first conn
// among cands (and of those the first that ok accepts) whose ike=
// proposals one of the peer's transforms supports, and the transform.
func selectPhase1(cands []config.Conn, offers []isakmp.Phase1Offer, ok func(config.Conn) bool) (config.Conn, isakmp.Phase1Offer, bool) {
	for _, c := range cands {
		if !ok(c) {
			continue
		}
		sel, found := shared.Select(shared.Offer(c.IKE, shared.ProtoIKE, nil, false), isakmp.Proposals1(offers), shared.ProtoIKE, false, 0)
		if found {
			return c, offers[sel.Number-1], true
		}
	}
	return config.Conn{}, isakmp.Phase1Offer{}, false
}

// noProposal is the failure of a responder that accepts none of the
// peer's phase 1 transforms: "peer proposed ...; we accept ...".
func noProposal(sa *isakmpSA, c config.Conn, offers []isakmp.Phase1Offer, refused []isakmp.Refused) error {
	proposed := shared.ProposalsString(isakmp.Proposals1(offers))
	if len(offers) == 0 && len(refused) > 0 {
		proposed = fmt.Sprintf("only transforms we cannot use (%v)", refused[0].Err)
	}
	text := fmt.Sprintf("peer proposed %s; we accept %s", proposed, shared.ConfigProposalsString(c.IKE, config.ProtoIKE))
	sa.log.Warn("no acceptable phase 1 proposal", "conn", c.Name, "remote", sa.remote, "reason", text)
	sa.conn = c
	return refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseNoProposal, "%s", text)
}

// establish marks the ISAKMP SA authenticated and reports it (IKEUp). A
// peer's INITIAL-CONTACT drops the other SAs with the same identities
// (RFC 2407 §4.6.3.3); a reauthentication of ours takes over the IPsec
// SAs of the SA it replaces (rekey.go).
func (sa *isakmpSA) establish(p *p1) {
	sa.state = saEstablished
	sa.established = sa.e.clock.Now()
	sa.lastRecv = sa.established
	if sa.openTimer != nil {
		sa.openTimer.Stop()
	}
	if !sa.initiator {
		sa.e.host.LeaveHalfOpen(sa)
	}
	c := sa.conn
	sa.servePeer(&c)
	sa.ids = sa.localID.String() + "|" + sa.remoteID.String()
	others := sa.e.host.Authenticated(sa, sa.ids)
	sa.log.Info("ISAKMP SA established", "conn", sa.conn.Name, "mode", phase1Name(sa.aggressive), "local_id", sa.localID.String(),
		"remote_id", sa.remoteID.String(), "remote", sa.remote, "algorithms", sa.alg.String(), "nat", sa.natLocal || sa.natRemote, "dpd", sa.peerDPD)
	sa.armDPD()
	sa.armLifetime()
	sa.e.host.Emit(shared.IKEUp{Names: sa.connNames(), IKE: sa.info()})
	if p.initialContact || p.sentIC {
		// The peer has no state for the older SAs with these identities
		// (RFC 2407 §4.6.3.3), or was told to drop it.
		for _, o := range others {
			o.DropStale()
		}
		return
	}
	// Without INITIAL-CONTACT a new ISAKMP SA with the same identities
	// replaces the older ones (a reauthentication, ours or the peer's):
	// their IPsec SAs move here. strongSwan does so as responder, and as
	// initiator of a reauthentication it keeps the old ISAKMP SA without
	// deleting it until its lifetime ends, while it sends its rekeys
	// through the new one.
	old := sa.replaces
	sa.replaces = nil
	for _, o := range others {
		if n, ok := o.(*isakmpSA); ok && n.e == sa.e && n != old {
			n.post(func() { n.handOver(sa, false) })
		}
	}
	if old != nil && !old.post(func() { old.handOver(sa, true) }) {
		sa.upConns(sa.connNames())
	}
}

func phase1Name(aggressive bool) string {
	if aggressive {
		return "aggressive"
	}
	return "main"
}

// armLifetime schedules the end of the ISAKMP SA: reauthentication at
// lifetime - margin - random(margin × rekeyfuzz) when the conn rekeys
// (rekey.go), and the hard end at the lifetime.
func (sa *isakmpSA) armLifetime() {
	c := sa.conn
	if sa.lifetime <= 0 {
		return
	}
	sa.expireTimer = sa.after(sa.lifetime, sa.expire)
	if !c.Rekey || sa.lifetime <= c.Margin {
		return
	}
	d := sa.lifetime - c.Margin
	if !sa.initiator {
		// The phase 1 initiator normally reauthenticates; the responder
		// does so only if that did not happen well before the end.
		d = sa.lifetime - c.Margin/2
	} else if fuzz := time.Duration(float64(c.Margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		d -= time.Duration(mrand.Int64N(int64(fuzz) + 1))
	}
	sa.rekeyTimer = sa.after(d, func() {
		if sa.state == saEstablished {
			sa.reauthenticate()
		}
	})
}
