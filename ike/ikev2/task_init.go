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
	"github.com/ipsecgw/ipsecgw/ike/shared/pki"
	"github.com/ipsecgw/ipsecgw/transform"
)

// IKE_SA_INIT (RFC 7296 §1.2): the initTask of either role, and what it
// leaves for IKE_AUTH.

// handshake is what IKE_SA_INIT leaves for IKE_AUTH: the nonces and both
// messages (AUTH signs them) and, for a responder, the conns acceptable
// for the peer's addresses. The SA holds it until it is authenticated.
type handshake struct {
	ni, nr           []byte
	initReq, initRsp []byte
	candidates       []*config.Conn
	// peerHashes is the peer's SIGNATURE_HASH_ALGORITHMS (nil: none, the
	// classic signature methods); peerCertReq says it sent a CERTREQ in
	// IKE_SA_INIT (which makes leftsendcert=ifasked send our certificate).
	peerHashes  []pki.Hash
	peerCertReq bool
	// RFC 9242/9370: the additional key exchanges still to run in
	// IKE_INTERMEDIATE exchanges (responder: in the order they are due),
	// how many ran, and the two IntAuth chains over their messages.
	addKEs        []transform.Transform
	intermediates int
	intI, intR    []byte
}

// signatureHashes is our SIGNATURE_HASH_ALGORITHMS data (RFC 7427 §4):
// SHA2-256, SHA2-384, SHA2-512 and Identity (Ed25519, RFC 8420), as
// strongSwan announces.
var signatureHashes = pki.AppendHashes(nil, pki.Announced)

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

// VendorID announces that we prefer ESP in UDP (shared.EncapAuto).
// Readable text, so that captures show who sent it.
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
// its own IKE_SA_INIT has left), so shared.EncapAuto is decided by the
// responder and the initiator follows the NAT it sees.
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
	want := natHash(spii, spir, sa.remote, false)
	srcSeen, srcOK := false, false
	for _, n := range ns {
		if n.Type == message.NAT_DETECTION_SOURCE_IP {
			srcSeen = true
			srcOK = srcOK || bytes.Equal(n.Data, want)
		}
	}
	if srcSeen && !srcOK {
		sa.natRemote = true
	}
	if n, ok := findNotify(ns, message.NAT_DETECTION_DESTINATION_IP); ok && !bytes.Equal(n.Data, natHash(spii, spir, sa.local, false)) {
		sa.natLocal = true
	}
}

// startInitiator begins a new IKE SA for conn c: IKE_SA_INIT, then IKE_AUTH
// with the conn's first CHILD SA.
func (sa *ikeSA) startInitiator(c *config.Conn) {
	sa.conn = c
	sa.conns.Add(c.Name)
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = shared.EffectiveID(c.Remote.ID, sa.remote.Addr())
	offered := shared.Offer(c.IKE, shared.ProtoIKE, nil, false)
	if len(offered) == 0 {
		sa.failPhase1(shared.CauseConfig, "conn has no usable IKE proposal")
		return
	}
	sa.hs = &handshake{}
	sa.log.Info("initiating IKE SA", "conn", c.Name, "remote", sa.remote)
	sa.publish()
	sa.enqueue(&initTask{offered: offered, group: offered[0].FirstGroup()})
	sa.enqueue(&authTask{conn: c})
}

// initTask is IKE_SA_INIT for either role: proposals, key exchange,
// nonces, NAT detection, the IKE SA's keys. Its key exchange, offer and
// retry state live here; the nonces and messages go to the SA's
// handshake for IKE_AUTH.
type initTask struct {
	responder bool
	ke        transform.KeyExchange
	// Initiator: what we offer, the group we send a KE for, and the
	// retries the responder may ask for (a COOKIE, another group).
	offered     []shared.Proposal
	group       transform.ID
	cookie      []byte
	cookieTries int
	keRetried   bool
	// Responder: the selected proposal and what the answer carries.
	sel       shared.Selection
	fakeNAT   bool // our NAT_DETECTION_SOURCE_IP is random (ESP in UDP)
	sigHashes bool // the initiator announced SIGNATURE_HASH_ALGORITHMS
}

func (*initTask) exchange() message.ExchangeType { return message.IKE_SA_INIT }

func (t *initTask) build(sa *ikeSA) ([]message.Payload, error) {
	if !t.responder {
		return t.buildRequest(sa)
	}
	return t.buildResponse(sa), nil
}

func (t *initTask) process(sa *ikeSA, m *message.Message) error {
	if !t.responder {
		t.processResponse(sa, m)
		return nil
	}
	return t.processRequest(sa, m)
}

func (t *initTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	t.closeKE()
	sa.failPhase1(cause, reason)
}

func (t *initTask) closeKE() {
	if t.ke != nil {
		t.ke.Close()
		t.ke = nil
	}
}

// sent keeps our IKE_SA_INIT request for the AUTH payloads.
func (t *initTask) sent(sa *ikeSA, pkt []byte) { sa.hs.initReq = pkt }

func (t *initTask) buildRequest(sa *ikeSA) ([]message.Payload, error) {
	if t.ke == nil || t.ke.Group() != t.group {
		t.closeKE()
		ke, err := transform.NewKeyExchange(t.group)
		if err != nil {
			return nil, configError(fmt.Errorf("key exchange %s: %w", transform.Transform{Type: transform.TypeKE, ID: t.group}, err))
		}
		t.ke = ke
	}
	if sa.hs.ni == nil {
		sa.hs.ni = newNonce()
	}
	var ps []message.Payload
	if t.cookie != nil {
		// RFC 7296 §2.6: the COOKIE notify comes first.
		ps = append(ps, message.Notify{Type: message.COOKIE, Data: t.cookie})
	}
	ps = append(ps,
		message.SA{Proposals: wireProposals(t.offered)},
		message.KE{Group: t.group, Data: t.ke.PublicKey()},
		message.Nonce{Data: sa.hs.ni},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natHash(sa.spiI, 0, sa.local, sa.forceUDP(false))},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natHash(sa.spiI, 0, sa.remote, false)},
		message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED},
		message.Notify{Type: message.SIGNATURE_HASH_ALGORITHMS, Data: signatureHashes},
	)
	if offersAddKE(t.offered) {
		// RFC 9370 §2.2.1: additional key exchanges need IKE_INTERMEDIATE.
		ps = append(ps, message.Notify{Type: message.INTERMEDIATE_EXCHANGE_SUPPORTED})
	}
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

func (t *initTask) processResponse(sa *ikeSA, m *message.Message) {
	ns := notifies(m.Payloads)
	if c, ok := findNotify(ns, message.COOKIE); ok {
		if t.cookieTries >= 3 || len(c.Data) < 1 || len(c.Data) > 64 {
			t.fail(sa, shared.CausePeerRefused, "peer keeps asking for a COOKIE; giving up after 3 tries")
			return
		}
		t.cookieTries++
		t.cookie = bytes.Clone(c.Data)
		sa.log.Debug("peer asked for a cookie, retrying IKE_SA_INIT")
		t.restart(sa)
		return
	}
	if n, ok := firstError(ns); ok {
		t.refused(sa, n)
		return
	}
	if m.Header.SPIr == 0 {
		t.fail(sa, shared.CausePeerRefused, "peer answered IKE_SA_INIT without a responder SPI")
		return
	}
	sap, _ := payload(m.Payloads, message.PayloadSA)
	kep, _ := payload(m.Payloads, message.PayloadKE)
	np, _ := payload(m.Payloads, message.PayloadNonce)
	saBody, _, err1 := message.ParseSA(sap.Body)
	ke, _, err2 := message.ParseKE(kep.Body)
	nonce, _, err3 := message.ParseNonce(np.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		t.fail(sa, shared.CausePeerRefused, "peer's IKE_SA_INIT response is malformed")
		return
	}
	alg, ok := shared.Accept(t.offered, proposals(saBody), shared.ProtoIKE, false)
	if !ok || alg.KE.ID != t.ke.Group() || ke.Group != t.ke.Group() {
		t.fail(sa, shared.CauseNoProposal, fmt.Sprintf("peer chose %s, which is not among our proposals (%s)", shared.ProposalsString(proposals(saBody)), shared.ProposalsString(t.offered)))
		return
	}
	_, intermediate := findNotify(ns, message.INTERMEDIATE_EXCHANGE_SUPPORTED)
	if len(alg.AdditionalKEs()) > 0 && !intermediate {
		t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer chose additional key exchanges (%s) without announcing IKE_INTERMEDIATE support (RFC 9242)", alg))
		return
	}
	sa.spiR = m.Header.SPIr
	sa.alg = alg
	sa.hs.nr = bytes.Clone(nonce.Data)
	gir, err := t.ke.SharedSecret(ke.Data)
	t.closeKE()
	if err != nil {
		t.fail(sa, shared.CausePeerRefused, "peer's key exchange value is invalid: "+err.Error())
		return
	}
	defer clear(gir)
	if err := sa.deriveKeys(gir); err != nil {
		t.fail(sa, shared.CauseInternal, err.Error())
		return
	}
	sa.hs.initRsp = m.Raw
	sa.checkNAT(ns, sa.spiI, sa.spiR)
	if sa.forceUDP(false) {
		sa.natLocal = true // faked: ESP goes in UDP
	}
	_, sa.fragmentation = findNotify(ns, message.IKEV2_FRAGMENTATION_SUPPORTED)
	if n, ok := findNotify(ns, message.SIGNATURE_HASH_ALGORITHMS); ok {
		sa.hs.peerHashes = pki.ParseHashes(n.Data)
	}
	_, sa.hs.peerCertReq = payload(m.Payloads, message.PayloadCERTREQ)
	sa.state = saAuth
	if (sa.natLocal || sa.natRemote) && sa.remote.Port() == 500 {
		// RFC 7296 §2.23: after detecting a NAT the initiator moves to 4500.
		sa.local = netip.AddrPortFrom(sa.local.Addr(), 4500)
		sa.remote = netip.AddrPortFrom(sa.remote.Addr(), 4500)
	}
	sa.log.Debug("IKE_SA_INIT done", "algorithms", alg.String(), "nat_local", sa.natLocal, "nat_remote", sa.natRemote)
	// One IKE_INTERMEDIATE exchange per additional key exchange, before
	// IKE_AUTH (RFC 9370 §2.2.1).
	var ts []task
	for _, ke := range alg.AdditionalKEs() {
		ts = append(ts, &intermediateTask{ke: ke})
	}
	sa.queue = append(ts, sa.queue...)
	sa.publish()
}

// refused handles an error notify in answer to our IKE_SA_INIT: another
// key exchange group is tried once if we offer it; anything else fails.
func (t *initTask) refused(sa *ikeSA, n message.Notify) {
	switch n.Type {
	case message.INVALID_KE_PAYLOAD:
		if len(n.Data) != 2 {
			t.fail(sa, shared.CausePeerRefused, "peer sent a malformed INVALID_KE_PAYLOAD")
			return
		}
		g := transform.ID(binary.BigEndian.Uint16(n.Data))
		gt := transform.Transform{Type: transform.TypeKE, ID: g}
		if t.keRetried || !shared.OffersGroup(t.offered, g) {
			t.fail(sa, shared.CauseInvalidKE, fmt.Sprintf("peer requires key exchange group %s, which our ike= proposals (%s) do not include", gt, shared.ProposalsString(t.offered)))
			return
		}
		sa.log.Info("peer wants another key exchange group, retrying", "group", gt.String())
		t.keRetried = true
		t.group = g
		t.restart(sa)
	case message.NO_PROPOSAL_CHOSEN:
		t.fail(sa, shared.CauseNoProposal, fmt.Sprintf("peer accepted none of our IKE proposals (NO_PROPOSAL_CHOSEN); we offered %s", shared.ProposalsString(t.offered)))
	default:
		t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer answered IKE_SA_INIT with %s", n.Type))
	}
}

// processRequest is the responder's half: the first conn (for the peer's
// addresses) whose proposals the peer supports, the key exchange and the
// IKE SA's keys. Whatever fails is answered with an error notify and no
// state is kept (reject).
func (t *initTask) processRequest(sa *ikeSA, m *message.Message) error {
	cands := sa.e.host.Candidates(2, sa.local, sa.remote)
	if len(cands) == 0 {
		sa.log.Info("IKE_SA_INIT from a peer no conn accepts", "remote", sa.remote, "local", sa.local)
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	sap, _ := payload(m.Payloads, message.PayloadSA)
	kep, _ := payload(m.Payloads, message.PayloadKE)
	np, _ := payload(m.Payloads, message.PayloadNonce)
	peerSA, _, err1 := message.ParseSA(sap.Body)
	ke, _, err2 := message.ParseKE(kep.Body)
	nonce, _, err3 := message.ParseNonce(np.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	var (
		found bool
		conn  *config.Conn
	)
	theirs := proposals(peerSA)
	if _, ok := findNotify(notifies(m.Payloads), message.INTERMEDIATE_EXCHANGE_SUPPORTED); !ok {
		// RFC 9370 §2.2.1: without IKE_INTERMEDIATE no additional key
		// exchange can be chosen; proposals that require one cannot match.
		theirs = shared.WithoutAddKE(theirs)
	}
	for _, c := range cands {
		if s, ok := shared.Select(shared.Offer(c.IKE, shared.ProtoIKE, nil, false), theirs, shared.ProtoIKE, false, ke.Group); ok {
			t.sel, conn, found = s, c, true
			break
		}
	}
	if !found {
		reason := fmt.Sprintf("peer proposed %s; we accept %s", shared.ProposalsString(proposals(peerSA)), shared.ConfigProposalsString(cands[0].IKE, config.ProtoIKE))
		sa.log.Warn("no acceptable IKE proposal", "conn", cands[0].Name, "remote", sa.remote, "reason", reason)
		sa.e.host.Emit(shared.Failure{Conn: cands[0].Name, State: shared.StatePhase1Failed, Cause: shared.CauseNoProposal, Text: reason})
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	if t.sel.KE.ID != ke.Group {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(t.sel.KE.ID))
		sa.log.Info("peer sent KE of another group; asking for ours", "sent", transform.Transform{Type: transform.TypeKE, ID: ke.Group}.String(), "want", t.sel.KE.String())
		return notifyError{Notify: message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]}}
	}
	kx, err := transform.NewKeyExchange(t.sel.KE.ID)
	if err != nil {
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	t.ke = kx
	gir, err := kx.SharedSecret(ke.Data)
	if err != nil {
		t.closeKE()
		sa.log.Info("peer's key exchange value is invalid", "err", err)
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	defer clear(gir)
	sa.alg = t.sel
	sa.conn = conn
	sa.hs = &handshake{ni: bytes.Clone(nonce.Data), nr: newNonce(), initReq: m.Raw, candidates: cands, addKEs: t.sel.AdditionalKEs()}
	if err := sa.deriveKeys(gir); err != nil {
		t.closeKE()
		sa.log.Warn("key derivation", "err", err)
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	ns := notifies(m.Payloads)
	sa.checkNAT(ns, sa.spiI, 0)
	peerIsIpsecgw := hasVendorID(m.Payloads, VendorID)
	t.fakeNAT = sa.forceUDP(peerIsIpsecgw)
	if t.fakeNAT {
		sa.natLocal = true // faked: ESP goes in UDP
		sa.log.Debug("faking a NAT so that ESP runs in UDP", "peer_is_ipsecgw", peerIsIpsecgw, "forceencaps", sa.conn.ForceEncaps)
	}
	_, sa.fragmentation = findNotify(ns, message.IKEV2_FRAGMENTATION_SUPPORTED)
	var hashes message.Notify
	if hashes, t.sigHashes = findNotify(ns, message.SIGNATURE_HASH_ALGORITHMS); t.sigHashes {
		sa.hs.peerHashes = pki.ParseHashes(hashes.Data)
	}
	return nil
}

func (t *initTask) buildResponse(sa *ikeSA) []message.Payload {
	ps := []message.Payload{
		message.SA{Proposals: []message.Proposal{wireProposal(t.sel.Proposal(shared.ProtoIKE, nil))}},
		message.KE{Group: t.sel.KE.ID, Data: t.ke.PublicKey()},
		message.Nonce{Data: sa.hs.nr},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natHash(sa.spiI, sa.spiR, sa.local, t.fakeNAT)},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natHash(sa.spiI, sa.spiR, sa.remote, false)},
	}
	if sa.e.cfg.Encapsulation == shared.EncapAuto {
		ps = append(ps, message.VendorID{Data: VendorID})
	}
	if sa.fragmentation {
		ps = append(ps, message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED})
	}
	if t.sigHashes {
		// RFC 7427 §4: announced in answer to the initiator's.
		ps = append(ps, message.Notify{Type: message.SIGNATURE_HASH_ALGORITHMS, Data: signatureHashes})
	}
	if len(t.sel.AdditionalKEs()) > 0 {
		ps = append(ps, message.Notify{Type: message.INTERMEDIATE_EXCHANGE_SUPPORTED})
	}
	// RFC 7296 §1.2: the responder asks for the initiator's certificate
	// here when a conn the request may end up on authenticates its peer
	// with one.
	for _, c := range sa.hs.candidates {
		if p, ok := sa.certReqPayload(c); ok {
			ps = append(ps, p)
			break
		}
	}
	return ps
}

// answered keeps our response for the AUTH payloads; IKE_AUTH comes next.
func (t *initTask) answered(sa *ikeSA) {
	t.closeKE()
	if sa.state != saInit || sa.hs == nil {
		return // rejected
	}
	sa.hs.initRsp = sa.lastRsp
	sa.state = saAuth
	sa.log.Debug("IKE_SA_INIT answered", "remote", sa.remote, "algorithms", t.sel.String())
}

// offersAddKE reports whether a proposal offers an additional key
// exchange other than NONE.
func offersAddKE(ps []shared.Proposal) bool {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type >= transform.TypeADDKE1 && t.Type <= transform.TypeADDKE7 && t.ID != transform.KENone {
				return true
			}
		}
	}
	return false
}

// deriveKeys computes SKEYSEED and the IKE SA keys from the handshake's
// nonces (RFC 7296 §2.14).
func (sa *ikeSA) deriveKeys(gir []byte) error {
	prf, err := transform.NewPRF(sa.alg.PRF.ID)
	if err != nil {
		return fmt.Errorf("PRF %s: %w", sa.alg.PRF, err)
	}
	sa.prf = prf
	ni, nr := sa.hs.ni, sa.hs.nr
	seed := message.SKEYSEED(prf, ni, nr, gir)
	defer clear(seed)
	keys, err := message.DeriveIKEKeys(prf, sa.alg.Encr, sa.alg.Integ, seed, ni, nr, sa.spiI, sa.spiR)
	if err != nil {
		return fmt.Errorf("IKE key derivation: %w", err)
	}
	sa.keys = keys
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
