package ikev2

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// signatureHashes is our SIGNATURE_HASH_ALGORITHMS data (RFC 7427 §4):
// SHA2-256, SHA2-384, SHA2-512, as strongSwan announces.
var signatureHashes = []byte{0, 2, 0, 3, 0, 4}

func newNonce() []byte {
	n := make([]byte, NonceLen)
	rand.Read(n)
	return n
}

// natHash is the NAT_DETECTION_*_IP data for an address; with fake set it
// is random, so that the peer sees a NAT and both sides encapsulate ESP
// (forceencaps=yes, the way strongSwan does it).
func natHash(spii, spir uint64, ap netip.AddrPort, fake bool) []byte {
	if fake {
		b := make([]byte, 20)
		rand.Read(b)
		return b
	}
	h := message.NATDetectionHash(spii, spir, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
	return h[:]
}

// VendorID announces that we prefer ESP in UDP (Options.Encapsulation
// shared.EncapAuto). Readable text, so that captures show who sent it.
var VendorID = []byte("ipsecgw: ESP in UDP preferred")

// hasVendorID reports whether a Vendor ID payload among ps carries id.
func hasVendorID(ps []message.RawPayload, id []byte) bool {
	for _, p := range ps {
		if p.Type == message.PayloadV && bytes.Equal(p.Body, id) {
			return true
		}
	}
	return false
}

// forceUDP reports whether we make the peer see a NAT (a random
// NAT_DETECTION_SOURCE_IP, as strongSwan's forceencaps=yes) so that ESP
// goes in UDP although no NAT is there. Only the responder knows whether
// the peer announced ipsecgw's Vendor ID (the initiator learns it after
// its own IKE_SA_INIT has left), so shared.EncapAuto is decided by the responder
// and the initiator follows the NAT it sees.
func (sa *ikeSA) forceUDP(peerIsIpsecgw bool) bool {
	switch {
	case sa.conn.ForceEncaps, sa.e.cfg.Encapsulation == shared.EncapUDP:
		return true
	default:
		return sa.e.cfg.Encapsulation == shared.EncapAuto && peerIsIpsecgw
	}
}

// checkNAT compares the peer's NAT detection hashes with what we see:
// a SOURCE_IP mismatch means the peer is translated, a DESTINATION_IP
// mismatch means we are. Peers that send neither are taken as not NATed.
func (sa *ikeSA) checkNAT(ns []message.Notify, spii, spir uint64) {
	var srcOK, srcSeen, dstSeen bool
	want := natHash(spii, spir, sa.remote, false)
	for _, n := range ns {
		if n.Type == message.NAT_DETECTION_SOURCE_IP {
			srcSeen = true
			if bytes.Equal(n.Data, want) {
				srcOK = true
			}
		}
	}
	if srcSeen && !srcOK {
		sa.natRemote = true
	}
	mine := natHash(spii, spir, sa.local, false)
	if n, ok := findNotify(ns, message.NAT_DETECTION_DESTINATION_IP); ok {
		dstSeen = true
		if !bytes.Equal(n.Data, mine) {
			sa.natLocal = true
		}
	}
	_ = dstSeen
}

// startInitiator begins a new IKE SA for conn c: IKE_SA_INIT, then IKE_AUTH
// with the conn's first CHILD SA.
func (sa *ikeSA) startInitiator(c config.Conn) {
	sa.conn = c
	sa.conns[c.Name] = true
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = shared.EffectiveID(c.Remote.ID, sa.remote.Addr())
	sa.offered = shared.Offer(c.IKE, shared.ProtoIKE, nil, false)
	if len(sa.offered) == 0 {
		sa.failPhase1(shared.CauseConfig, "conn has no usable IKE proposal")
		return
	}
	sa.keGroup = sa.offered[0].FirstGroup()
	sa.log.Info("initiating IKE SA", "conn", c.Name, "remote", sa.remote)
	sa.publish()
	sa.enqueue(&initTask{})
	sa.enqueue(&authTask{conn: c})
}

// initTask is the initiator side of IKE_SA_INIT.
type initTask struct{}

func (*initTask) exchange() message.ExchangeType { return message.IKE_SA_INIT }

func (*initTask) build(sa *ikeSA) ([]message.Payload, error) {
	if sa.ke == nil || sa.ke.Group() != sa.keGroup {
		if sa.ke != nil {
			sa.ke.Close()
		}
		ke, err := transform.NewKeyExchange(sa.keGroup)
		if err != nil {
			return nil, fmt.Errorf("key exchange %s: %w", transform.Transform{Type: transform.TypeKE, ID: sa.keGroup}, err)
		}
		sa.ke = ke
	}
	if sa.ni == nil {
		sa.ni = newNonce()
	}
	var ps []message.Payload
	if sa.cookie != nil {
		// RFC 7296 §2.6: the COOKIE notify comes first.
		ps = append(ps, message.Notify{Type: message.COOKIE, Data: sa.cookie})
	}
	ps = append(ps,
		message.SA{Proposals: wireProposals(sa.offered)},
		message.KE{Group: sa.keGroup, Data: sa.ke.PublicKey()},
		message.Nonce{Data: sa.ni},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natHash(sa.spiI, 0, sa.local, sa.forceUDP(false))},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natHash(sa.spiI, 0, sa.remote, false)},
		message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED},
		message.Notify{Type: message.SIGNATURE_HASH_ALGORITHMS, Data: signatureHashes},
	)
	if sa.e.cfg.Encapsulation == shared.EncapAuto {
		ps = append(ps, message.VendorID{Data: VendorID})
	}
	return ps, nil
}

// restart repeats IKE_SA_INIT (after COOKIE or INVALID_KE_PAYLOAD): message
// ID 0 again, before the IKE_AUTH task.
func (t *initTask) restart(sa *ikeSA) {
	sa.nextID = 0
	sa.queue = append([]task{t}, sa.queue...)
}

func (t *initTask) process(sa *ikeSA, m *message.Message) error {
	ns := notifies(m.Payloads)
	if c, ok := findNotify(ns, message.COOKIE); ok {
		if sa.cookieTries >= 3 || len(c.Data) < 1 || len(c.Data) > 64 {
			sa.failPhase1(shared.CausePeerRefused, "peer keeps asking for a COOKIE; giving up after 3 tries")
			return nil
		}
		sa.cookieTries++
		sa.cookie = bytes.Clone(c.Data)
		sa.log.Debug("peer asked for a cookie, retrying IKE_SA_INIT")
		t.restart(sa)
		return nil
	}
	if n, ok := firstError(ns); ok {
		switch n.Type {
		case message.INVALID_KE_PAYLOAD:
			if len(n.Data) != 2 {
				sa.failPhase1(shared.CausePeerRefused, "peer sent a malformed INVALID_KE_PAYLOAD")
				return nil
			}
			g := transform.ID(binary.BigEndian.Uint16(n.Data))
			gt := transform.Transform{Type: transform.TypeKE, ID: g}
			if sa.keRetried || !shared.OffersGroup(sa.offered, g) {
				sa.failPhase1(shared.CauseInvalidKE, fmt.Sprintf("peer requires key exchange group %s, which our ike= proposals (%s) do not include", gt, shared.ProposalsString(sa.offered)))
				return nil
			}
			sa.log.Info("peer wants another key exchange group, retrying", "group", gt.String())
			sa.keRetried = true
			sa.keGroup = g
			t.restart(sa)
			return nil
		case message.NO_PROPOSAL_CHOSEN:
			sa.failPhase1(shared.CauseNoProposal, fmt.Sprintf("peer accepted none of our IKE proposals (NO_PROPOSAL_CHOSEN); we offered %s", shared.ProposalsString(sa.offered)))
			return nil
		default:
			sa.failPhase1(shared.CausePeerRefused, fmt.Sprintf("peer answered IKE_SA_INIT with %s", n.Type))
			return nil
		}
	}
	if m.Header.SPIr == 0 {
		sa.failPhase1(shared.CausePeerRefused, "peer answered IKE_SA_INIT without a responder SPI")
		return nil
	}
	sap, _ := payload(m.Payloads, message.PayloadSA)
	kep, _ := payload(m.Payloads, message.PayloadKE)
	np, _ := payload(m.Payloads, message.PayloadNonce)
	saBody, _, err1 := message.ParseSA(sap.Body)
	ke, _, err2 := message.ParseKE(kep.Body)
	nonce, _, err3 := message.ParseNonce(np.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		sa.failPhase1(shared.CausePeerRefused, "peer's IKE_SA_INIT response is malformed")
		return nil
	}
	alg, ok := shared.Accept(sa.offered, proposals(saBody), shared.ProtoIKE, false)
	if !ok || alg.KE.ID != sa.ke.Group() || ke.Group != sa.ke.Group() {
		sa.failPhase1(shared.CauseNoProposal, fmt.Sprintf("peer chose %s, which is not among our proposals (%s)", shared.ProposalsString(proposals(saBody)), shared.ProposalsString(sa.offered)))
		return nil
	}
	sa.spiR = m.Header.SPIr
	sa.alg = alg
	sa.nr = bytes.Clone(nonce.Data)
	gir, err := sa.ke.SharedSecret(ke.Data)
	sa.ke.Close()
	sa.ke = nil
	if err != nil {
		sa.failPhase1(shared.CausePeerRefused, "peer's key exchange value is invalid: "+err.Error())
		return nil
	}
	defer clear(gir)
	if err := sa.deriveKeys(gir); err != nil {
		sa.failPhase1(shared.CauseInternal, err.Error())
		return nil
	}
	sa.initRsp = m.Raw
	sa.checkNAT(ns, sa.spiI, sa.spiR)
	if sa.forceUDP(false) {
		sa.natLocal = true // faked: ESP goes in UDP
	}
	_, sa.fragmentation = findNotify(ns, message.IKEV2_FRAGMENTATION_SUPPORTED)
	sa.state = saAuth
	if (sa.natLocal || sa.natRemote) && sa.remote.Port() == 500 {
		// RFC 7296 §2.23: after detecting a NAT the initiator moves to 4500.
		sa.local = netip.AddrPortFrom(sa.local.Addr(), 4500)
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), 4500)
	}
	sa.log.Debug("IKE_SA_INIT done", "algorithms", alg.String(), "nat_local", sa.natLocal, "nat_remote", sa.natRemote)
	sa.publish()
	return nil
}

func (*initTask) fail(sa *ikeSA, cause shared.Cause, reason string) { sa.failPhase1(cause, reason) }

// deriveKeys computes SKEYSEED and the IKE SA keys, and builds the SK
// payload protectors (RFC 7296 §2.14).
func (sa *ikeSA) deriveKeys(gir []byte) error {
	prf, err := transform.NewPRF(sa.alg.PRF.ID)
	if err != nil {
		return fmt.Errorf("PRF %s: %w", sa.alg.PRF, err)
	}
	sa.prf = prf
	seed := message.SKEYSEED(prf, sa.ni, sa.nr, gir)
	defer clear(seed)
	keys, err := message.DeriveIKEKeys(prf, sa.alg.Encr, sa.alg.Integ, seed, sa.ni, sa.nr, sa.spiI, sa.spiR)
	if err != nil {
		return fmt.Errorf("IKE key derivation: %w", err)
	}
	sa.keys = keys
	out, in, err := sa.keys.Protectors(sa.alg.Encr, sa.alg.Integ, sa.initiator)
	if err != nil {
		return fmt.Errorf("IKE SA protection %s: %w", sa.alg, err)
	}
	sa.out, sa.in = out, in
	return nil
}

// reject answers an IKE_SA_INIT request statelessly with one error notify
// and ends the SA.
func (sa *ikeSA) reject(n message.Notify) {
	h := message.Header{SPIi: sa.spiI, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagResponse}
	pkt := message.AppendMessage(nil, h, n)
	// Unregister first: the initiator's retry (same SPI, after
	// INVALID_KE_PAYLOAD) may arrive as soon as the answer is out, and
	// must create a new SA rather than reach this dying one.
	sa.destroy()
	sa.send(pkt)
}

// respondInit is the responder side of IKE_SA_INIT.
func (sa *ikeSA) respondInit(m *message.Message) {
	cands := sa.e.host.Candidates(2, sa.local, sa.remote)
	if len(cands) == 0 {
		sa.log.Info("IKE_SA_INIT from a peer no conn accepts", "remote", sa.remote, "local", sa.local)
		sa.reject(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	sap, _ := payload(m.Payloads, message.PayloadSA)
	kep, _ := payload(m.Payloads, message.PayloadKE)
	np, _ := payload(m.Payloads, message.PayloadNonce)
	peerSA, _, err1 := message.ParseSA(sap.Body)
	ke, _, err2 := message.ParseKE(kep.Body)
	nonce, _, err3 := message.ParseNonce(np.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		sa.reject(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	var (
		sel   shared.Selection
		found bool
		conn  config.Conn
	)
	for _, c := range cands {
		if s, ok := shared.Select(shared.Offer(c.IKE, shared.ProtoIKE, nil, false), proposals(peerSA), shared.ProtoIKE, false, ke.Group); ok {
			sel, conn, found = s, c, true
			break
		}
	}
	if !found {
		reason := fmt.Sprintf("peer proposed %s; we accept %s", shared.ProposalsString(proposals(peerSA)), shared.ConfigProposalsString(cands[0].IKE, config.ProtoIKE))
		sa.log.Warn("no acceptable IKE proposal", "conn", cands[0].Name, "remote", sa.remote, "reason", reason)
		sa.e.host.Emit(shared.Failure{Conn: cands[0].Name, State: shared.StatePhase1Failed, Cause: shared.CauseNoProposal, Text: reason})
		sa.reject(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	if sel.KE.ID != ke.Group {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
		sa.log.Info("peer sent KE of another group; asking for ours", "sent", transform.Transform{Type: transform.TypeKE, ID: ke.Group}.String(), "want", sel.KE.String())
		sa.reject(message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]})
		return
	}
	kx, err := transform.NewKeyExchange(sel.KE.ID)
	if err != nil {
		sa.reject(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	defer kx.Close()
	gir, err := kx.SharedSecret(ke.Data)
	if err != nil {
		sa.log.Info("peer's key exchange value is invalid", "err", err)
		sa.reject(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	defer clear(gir)
	sa.alg = sel
	sa.conn = conn
	sa.candidates = cands
	sa.ni = bytes.Clone(nonce.Data)
	sa.nr = newNonce()
	if err := sa.deriveKeys(gir); err != nil {
		sa.log.Warn("key derivation", "err", err)
		sa.reject(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	ns := notifies(m.Payloads)
	sa.checkNAT(ns, sa.spiI, 0)
	peerIsIpsecgw := hasVendorID(m.Payloads, VendorID)
	fake := sa.forceUDP(peerIsIpsecgw)
	if fake {
		sa.natLocal = true // faked: ESP goes in UDP
		sa.log.Debug("faking a NAT so that ESP runs in UDP", "peer_is_ipsecgw", peerIsIpsecgw, "forceencaps", sa.conn.ForceEncaps)
	}
	_, sa.fragmentation = findNotify(ns, message.IKEV2_FRAGMENTATION_SUPPORTED)
	sa.initReq = m.Raw
	ps := []message.Payload{
		message.SA{Proposals: []message.Proposal{wireProposal(sel.Proposal(shared.ProtoIKE, nil))}},
		message.KE{Group: sel.KE.ID, Data: kx.PublicKey()},
		message.Nonce{Data: sa.nr},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natHash(sa.spiI, sa.spiR, sa.local, fake)},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natHash(sa.spiI, sa.spiR, sa.remote, false)},
	}
	if sa.e.cfg.Encapsulation == shared.EncapAuto {
		ps = append(ps, message.VendorID{Data: VendorID})
	}
	if sa.fragmentation {
		ps = append(ps, message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED})
	}
	if _, ok := findNotify(ns, message.SIGNATURE_HASH_ALGORITHMS); ok {
		// RFC 7427 §4: announced in answer to the initiator's.
		ps = append(ps, message.Notify{Type: message.SIGNATURE_HASH_ALGORITHMS, Data: signatureHashes})
	}
	sa.sendResponse(message.IKE_SA_INIT, 0, ps)
	sa.initRsp = sa.lastRsp
	sa.state = saAuth
	sa.log.Debug("IKE_SA_INIT answered", "remote", sa.remote, "algorithms", sel.String())
}

// armHalfOpen limits the life of a responder SA that has not completed
// IKE_AUTH (armed when the SA is created for an IKE_SA_INIT request).
func (sa *ikeSA) armHalfOpen() {
	sa.openTimer = sa.after(sa.e.cfg.HalfOpenTimeout, func() {
		if sa.state == saInit || sa.state == saAuth {
			sa.log.Info("half-open IKE SA timed out", "remote", sa.remote)
			sa.destroy()
		}
	})
}
