package ikev2

import (
	"crypto/x509"
	"encoding/binary"
	"fmt"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/ike/shared/pki"
)

// IKE_AUTH (RFC 7296 §1.2, §2.15) with a PSK, for either role, carrying
// the conn's first CHILD SA.

// authTask is IKE_AUTH for either role. The initiator proves its
// identity and offers the first CHILD SA (child); the responder picks the
// conn that the peer's identity and our addresses allow, checks the AUTH
// payload, answers with its own and the first CHILD SA (response).
type authTask struct {
	responder bool
	conn      *config.Conn
	child     childOffer
	// Responder: the request's payloads, the answer, and what to report
	// once the answer is out (a failed authentication).
	in             []message.RawPayload
	rsp            []message.Payload
	conns          []*config.Conn
	initialContact bool
	failConn       string
	failCause      shared.Cause
	failText       string
}

func (*authTask) exchange() message.ExchangeType { return message.IKE_AUTH }

func (t *authTask) build(sa *ikeSA) ([]message.Payload, error) {
	if !t.responder {
		return t.buildRequest(sa)
	}
	return t.buildResponse(sa), nil
}

func (t *authTask) process(sa *ikeSA, m *message.Message) error {
	if !t.responder {
		t.processResponse(sa, m)
		return nil
	}
	return t.processRequest(sa, m)
}

func (t *authTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	t.discard()
	sa.failPhase1(cause, reason)
}

func (t *authTask) discard() { t.child.discard() }

func (t *authTask) buildRequest(sa *ikeSA) ([]message.Payload, error) {
	idi, ok := ourIDWithCert(sa.localID, t.conn.Local.Cert, false)
	if !ok {
		return nil, configError(fmt.Errorf("our ID %s cannot be encoded (use an address, FQDN, user@FQDN, key ID or DN)", sa.localID))
	}
	signed := append(message.SignedOctets(sa.prf, sa.keys.SKpi, sa.hs.initReq, sa.hs.nr, message.AppendID(nil, idi)), sa.intAuth(sa.nextID)...)
	auth, err := t.ourAuth(sa, signed)
	if err != nil {
		return nil, err
	}
	ps := []message.Payload{idi}
	ps = append(ps, ourCertPayloads(t.conn, sa.hs.peerCertReq)...)
	if p, ok := sa.certReqPayload(t.conn); ok {
		ps = append(ps, p)
	}
	// No INITIAL_CONTACT when reauthenticating: the peer must keep the old
	// SA until we delete it (make before break).
	if sa.replaces == nil && !sa.e.host.HasPeerSA(sa, *t.conn) {
		ps = append(ps, message.Notify{Type: message.INITIAL_CONTACT})
	}
	if t.conn.Remote.ID.Type != config.IDAny {
		if idr, ok := wireID(t.conn.Remote.ID, true); ok {
			ps = append(ps, idr)
		}
	}
	ps = append(ps, auth)
	cps, err := t.child.build(sa, t.conn, false)
	if err != nil {
		return nil, err
	}
	return append(ps, cps...), nil
}

// ourAuth is our AUTH payload over the signed octets: a PSK MIC, or a
// signature with our certificate's key (leftauth=pubkey).
func (t *authTask) ourAuth(sa *ikeSA, signed []byte) (message.Auth, error) {
	if t.conn.Local.Auth == config.AuthPubkey {
		return sa.signAuth(t.conn, signed)
	}
	psk, ok := sa.e.host.PSK(sa.localID, sa.remoteID)
	if !ok {
		return message.Auth{}, configError(fmt.Errorf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, sa.remoteID))
	}
	defer clear(psk)
	return message.Auth{Method: message.AuthSharedKeyMIC, Data: message.PSKAuth(sa.prf, psk, signed)}, nil
}

func (t *authTask) processResponse(sa *ikeSA, m *message.Message) {
	in := body(m)
	ns := notifies(in)
	if _, ok := findNotify(ns, message.AUTHENTICATION_FAILED); ok {
		t.fail(sa, shared.CauseAuthFailed, sa.rejectedText(t.conn))
		return
	}
	idp, hasID := payload(in, message.PayloadIDr)
	ap, hasAuth := payload(in, message.PayloadAUTH)
	if !hasID || !hasAuth {
		if n, ok := firstError(ns); ok {
			t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer answered IKE_AUTH with %s", n.Type))
		} else {
			t.fail(sa, shared.CausePeerRefused, "peer's IKE_AUTH response lacks IDr or AUTH")
		}
		return
	}
	idr, _, err := message.ParseID(idp.Body)
	if err != nil {
		t.fail(sa, shared.CausePeerRefused, "peer's IDr payload is malformed")
		return
	}
	peerID, ok := configID(idr)
	if !ok || !shared.IDMatches(t.conn.Remote.ID, peerID) {
		sa.authFailedByUs(shared.CauseIDMismatch, fmt.Sprintf("peer identified itself as %s, but rightid=%s", describeID(idr, peerID, ok), t.conn.Remote.ID))
		return
	}
	auth, _, err := message.ParseAuth(ap.Body)
	if err == nil && t.conn.Remote.Auth == config.AuthPubkey {
		signed := append(message.SignedOctets(sa.prf, sa.keys.SKpr, sa.hs.initRsp, sa.hs.ni, idp.Body), sa.intAuth(m.Header.MessageID)...)
		if f := sa.verifyPeerCert(t.conn, peerID, in, auth, signed); f != nil {
			sa.authFailedByUs(f.cause, f.text)
			return
		}
		t.established(sa, m, peerID)
		return
	}
	if err != nil || auth.Method != message.AuthSharedKeyMIC {
		sa.authFailedByUs(shared.CauseAuthFailed, fmt.Sprintf("peer authenticated with method %d; we expect a PSK", auth.Method))
		return
	}
	if t.conn.Remote.ID.Type != config.IDAny {
		peerID = sa.remoteID
	}
	psk, ok := sa.e.host.PSK(sa.localID, peerID)
	if !ok {
		sa.authFailedByUs(shared.CauseConfig, fmt.Sprintf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, peerID))
		return
	}
	signed := append(message.SignedOctets(sa.prf, sa.keys.SKpr, sa.hs.initRsp, sa.hs.ni, idp.Body), sa.intAuth(m.Header.MessageID)...)
	good := message.VerifyPSKAuth(sa.prf, psk, signed, auth.Data)
	clear(psk)
	if !good {
		sa.authFailedByUs(shared.CauseAuthFailed, fmt.Sprintf("peer's PSK differs (its AUTH payload did not verify) for IDs %s ↔ %s", sa.localID, peerID))
		return
	}
	t.established(sa, m, peerID)
}

// established: the responder authenticated; the IKE SA is up and the
// first CHILD SA is taken from the response.
func (t *authTask) established(sa *ikeSA, m *message.Message, peerID config.Identity) {
	sa.remoteID = peerID
	sa.establish(false)
	t.child.process(sa, t.conn, m, false)
	sa.endHandshake()
}

// refuse makes the responder answer AUTHENTICATION_FAILED and then fail
// the IKE SA with the reason, reported for conn (the conns the request
// matched best, empty when none).
func (t *authTask) refuse(conn string, cause shared.Cause, reason string) error {
	t.failConn, t.failCause, t.failText = conn, cause, reason
	return notifyError{Notify: message.Notify{Type: message.AUTHENTICATION_FAILED}}
}

// processRequest identifies the peer, picks the conn and verifies its AUTH
// payload; the answer's own ID and AUTH are prepared here, the CHILD SA is
// installed by buildResponse.
func (t *authTask) processRequest(sa *ikeSA, m *message.Message) error {
	if sa.state != saAuth {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	t.in = m.Inner
	cands := sa.hs.candidates
	if len(sa.hs.addKEs) > 0 {
		return t.refuse(cands[0].Name, shared.CausePeerRefused, fmt.Sprintf("peer sent IKE_AUTH before the additional key exchanges it chose (%s)", sa.alg))
	}
	idp, _ := payload(t.in, message.PayloadIDi)
	ap, hasAuth := payload(t.in, message.PayloadAUTH)
	idi, _, err := message.ParseID(idp.Body)
	if err != nil {
		return t.refuse("", shared.CausePeerRefused, "peer's IDi payload is malformed")
	}
	peerID, ok := configID(idi)
	if !ok {
		return t.refuse(cands[0].Name, shared.CauseIDMismatch, fmt.Sprintf("peer uses an ID of type %d, which no conn can match", idi.Type))
	}
	if !hasAuth {
		return t.refuse(cands[0].Name, shared.CauseAuthFailed, "peer sent no AUTH payload (EAP is not supported)")
	}
	auth, _, err := message.ParseAuth(ap.Body)
	if err != nil {
		return t.refuse(cands[0].Name, shared.CauseAuthFailed, "peer's AUTH payload is malformed")
	}
	// The AUTH method says which conns can take the peer: a PSK MIC the
	// PSK conns, a signature those that authenticate the peer by
	// certificate (rightauth=pubkey).
	byCert := pki.Method(auth.Method).IsSignature()
	if !byCert && auth.Method != message.AuthSharedKeyMIC {
		return t.refuse(cands[0].Name, shared.CauseAuthFailed, fmt.Sprintf("peer authenticates with method %d; ipsecgw takes a PSK (2) or a signature (1, 9-11, 14)", auth.Method))
	}
	kind := "PSK"
	if byCert {
		kind = "certificate (authby=pubkey)"
	}
	var want *config.Identity
	if p, ok := payload(t.in, message.PayloadIDr); ok {
		if x, _, err := message.ParseID(p.Body); err == nil {
			if w, ok := configID(x); ok {
				want = &w
			}
		}
	}
	for _, c := range cands {
		if (byCert && c.Remote.Auth != config.AuthPubkey) || (!byCert && !c.UsesPSK()) || !shared.IDMatches(c.Remote.ID, peerID) {
			continue
		}
		if want != nil && !shared.IDMatches(shared.EffectiveID(c.Local.ID, sa.local.Addr()), *want) && c.Local.ID.Type != config.IDAny {
			continue
		}
		t.conns = append(t.conns, c)
	}
	if len(t.conns) == 0 {
		reason := fmt.Sprintf("peer's ID %s matches no %s conn for %s (rightid=%s)", peerID, kind, sa.remote.Addr(), cands[0].Remote.ID)
		if want != nil {
			reason = fmt.Sprintf("peer's ID %s asking for our ID %s matches no %s conn for %s (rightid=%s, leftid=%s)", peerID, *want, kind, sa.remote.Addr(), cands[0].Remote.ID, shared.EffectiveID(cands[0].Local.ID, sa.local.Addr()))
		}
		return t.refuse(cands[0].Name, shared.CauseIDMismatch, reason)
	}
	c := t.conns[0]
	sa.conn = c
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = peerID
	signedI := append(message.SignedOctets(sa.prf, sa.keys.SKpi, sa.hs.initReq, sa.hs.nr, idp.Body), sa.intAuth(m.Header.MessageID)...)
	if byCert {
		if f := sa.verifyPeerCert(c, peerID, t.in, auth, signedI); f != nil {
			return t.refuse(c.Name, f.cause, f.text)
		}
	} else {
		psk, ok := sa.e.host.PSK(sa.localID, peerID)
		if !ok {
			return t.refuse(c.Name, shared.CauseConfig, fmt.Sprintf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, peerID))
		}
		good := message.VerifyPSKAuth(sa.prf, psk, signedI, auth.Data)
		clear(psk)
		if !good {
			return t.refuse(c.Name, shared.CauseAuthFailed, fmt.Sprintf("peer's PSK differs (AUTH payload did not verify) for IDs %s ↔ %s", sa.localID, peerID))
		}
	}
	t.conn = c
	idr, ok := ourIDWithCert(sa.localID, c.Local.Cert, true)
	if !ok {
		return t.refuse(c.Name, shared.CauseConfig, fmt.Sprintf("our ID %s cannot be encoded", sa.localID))
	}
	signedR := append(message.SignedOctets(sa.prf, sa.keys.SKpr, sa.hs.initRsp, sa.hs.ni, message.AppendID(nil, idr)), sa.intAuth(m.Header.MessageID)...)
	ourAuth, err := t.ourAuth(sa, signedR)
	if err != nil {
		return t.refuse(c.Name, shared.CauseConfig, err.Error())
	}
	_, peerAsked := payload(t.in, message.PayloadCERTREQ)
	t.rsp = append([]message.Payload{idr}, ourCertPayloads(c, peerAsked)...)
	t.rsp = append(t.rsp, ourAuth)
	_, t.initialContact = findNotify(notifies(t.in), message.INITIAL_CONTACT)
	return nil
}

// rejectedText is the reason when the peer answered our authentication
// with AUTHENTICATION_FAILED, in the terms of how conn c authenticates.
func (sa *ikeSA) rejectedText(c *config.Conn) string {
	if c.Local.Auth == config.AuthPubkey {
		return fmt.Sprintf("peer rejected our authentication (AUTHENTICATION_FAILED): it does not accept our certificate %q (expired, revoked, or its CA not trusted there) or our ID %s; the peer's log says which", certSubject(c.Local.Cert), sa.localID)
	}
	return fmt.Sprintf("peer rejected our authentication (AUTHENTICATION_FAILED): the PSK for IDs %s ↔ %s differs between the two sides, or the peer does not accept our ID %s", sa.localID, sa.remoteID, sa.localID)
}

func certSubject(c *x509.Certificate) string {
	if c == nil {
		return "(none)"
	}
	return pki.Subject(c)
}

// buildResponse establishes the IKE SA and answers with our ID, AUTH and
// the first CHILD SA (installed now: the initiator may send on it as soon
// as it has our answer).
func (t *authTask) buildResponse(sa *ikeSA) []message.Payload {
	sa.establish(false)
	if t.initialContact {
		sa.initialContact()
	}
	r := childResponse{conns: t.conns, ikeAuth: true, ni: sa.hs.ni, nr: sa.hs.nr}
	return append(t.rsp, r.respond(sa, t.in)...)
}

// answered fails the SA after our AUTHENTICATION_FAILED went out, or ends
// the handshake.
func (t *authTask) answered(sa *ikeSA) {
	if t.failText != "" {
		if t.failConn != "" {
			// Reported under the conn the peer's ID pointed at; sa.conn is
			// shared, so the SA gets a copy of its own for that.
			fc := *sa.conn
			fc.Name = t.failConn
			sa.conn = &fc
		}
		sa.failPhase1(t.failCause, t.failText)
		return
	}
	if sa.state == saEstablished {
		sa.endHandshake()
	}
}

// endHandshake drops what only IKE_SA_INIT and IKE_AUTH needed once the SA
// is authenticated: the handshake state and the keys of the AUTH payloads.
func (sa *ikeSA) endHandshake() {
	sa.hs = nil
	sa.keys.DropAuthKeys()
}

func describeID(x message.ID, id interface{ String() string }, ok bool) string {
	if ok {
		return id.String()
	}
	return fmt.Sprintf("an ID of type %d", x.Type)
}

// authFailedByUs: the initiator rejects the responder's authentication. The
// responder believes the SA is up, so it is told in an INFORMATIONAL
// request with AUTHENTICATION_FAILED (RFC 7296 §2.21.2), sent once.
func (sa *ikeSA) authFailedByUs(cause shared.Cause, reason string) {
	if pkt, err := sa.encode(sa.header(message.INFORMATIONAL, sa.nextID, false), []message.Payload{message.Notify{Type: message.AUTHENTICATION_FAILED}}); err == nil {
		sa.send(pkt)
	}
	sa.failPhase1(cause, reason)
}

// establish marks the IKE SA authenticated and reports it (IKEUp), unless
// it is the rekeyed successor of another, which reported it already
// (IKERekeyed, handOver).
func (sa *ikeSA) establish(rekeyed bool) {
	sa.state = saEstablished
	sa.established = sa.e.now()
	sa.lastRecv = sa.established
	if sa.openTimer != nil {
		sa.openTimer.Stop()
	}
	if !sa.initiator {
		sa.e.host.LeaveHalfOpen(sa)
	}
	sa.servePeer(sa.conn)
	sa.e.host.Authenticated(sa, sa.idPair())
	sa.log.Info("IKE SA established", "conn", sa.conn.Name, "local_id", sa.localID.String(), "remote_id", sa.remoteID.String(),
		"remote", sa.remote, "algorithms", sa.alg.String(), "nat", sa.natLocal || sa.natRemote)
	sa.armDPD()
	sa.armIKERekey()
	if !rekeyed {
		sa.e.host.Emit(shared.IKEUp{Names: sa.connNames(), IKE: sa.info()})
	} else {
		// IKERekeyed described this SA before its rekey timer was armed.
		sa.publish()
	}
}

// servePeer tells the Host whether this SA serves its conn's peer (c, or
// nil when it stops: rekeyed, reauthenticated, deleted).
func (sa *ikeSA) servePeer(c *config.Conn) {
	sa.serving = c != nil
	sa.e.host.ServePeer(sa, c)
}

// idPair is "local|remote": the IDs that INITIAL_CONTACT refers to (the
// Host keeps it; the SA builds it when needed rather than keep a copy).
func (sa *ikeSA) idPair() string { return sa.localID.String() + "|" + sa.remoteID.String() }

// initialContact drops every other IKE SA with the same pair of IDs: the
// peer says it has no state for them (RFC 7296 §2.4).
func (sa *ikeSA) initialContact() {
	for _, o := range sa.e.host.Authenticated(sa, sa.idPair()) {
		o.DropStale()
	}
}

func spiBytes(spi uint32) []byte {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], spi)
	return b[:]
}

func spiValue(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

func spiHex(spi uint32) string { return fmt.Sprintf("%08x", spi) }
