package ikev2

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// authTask is the initiator side of IKE_AUTH with a PSK, carrying the
// conn's first CHILD SA (RFC 7296 §1.2).
type authTask struct {
	conn  config.Conn
	child childOffer
	idr   bool // we sent IDr
}

func (*authTask) exchange() message.ExchangeType { return message.IKE_AUTH }

func (t *authTask) build(sa *ikeSA) ([]message.Payload, error) {
	idi, ok := wireID(sa.localID, false)
	if !ok {
		return nil, fmt.Errorf("our ID %s cannot be used with a PSK (use an address, FQDN, user@FQDN or key ID)", sa.localID)
	}
	psk, ok := sa.e.host.PSK(sa.localID, sa.remoteID)
	if !ok {
		return nil, fmt.Errorf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, sa.remoteID)
	}
	defer clear(psk)
	signed := message.SignedOctets(sa.prf, sa.keys.SKpi, sa.initReq, sa.nr, message.AppendID(nil, idi))
	ps := []message.Payload{idi}
	// No INITIAL_CONTACT when reauthenticating: the peer must keep the old
	// SA until we delete it (make before break).
	if sa.replaces == nil && !sa.e.host.HasPeerSA(sa, t.conn) {
		ps = append(ps, message.Notify{Type: message.INITIAL_CONTACT})
	}
	if t.conn.Remote.ID.Type != config.IDAny {
		if idr, ok := wireID(t.conn.Remote.ID, true); ok {
			ps = append(ps, idr)
			t.idr = true
		}
	}
	ps = append(ps, message.Auth{Method: message.AuthSharedKeyMIC, Data: message.PSKAuth(sa.prf, psk, signed)})
	cps, err := t.child.build(sa, t.conn, false)
	if err != nil {
		return nil, err
	}
	return append(ps, cps...), nil
}

func (t *authTask) fail(sa *ikeSA, cause shared.Cause, reason string) { sa.failPhase1(cause, reason) }

func (t *authTask) process(sa *ikeSA, m *message.Message) error {
	in := body(m)
	ns := notifies(in)
	if _, ok := findNotify(ns, message.AUTHENTICATION_FAILED); ok {
		sa.failPhase1(shared.CauseAuthFailed, fmt.Sprintf("peer rejected our authentication (AUTHENTICATION_FAILED): the PSK for IDs %s ↔ %s differs between the two sides, or the peer does not accept our ID %s", sa.localID, sa.remoteID, sa.localID))
		return nil
	}
	idp, hasID := payload(in, message.PayloadIDr)
	ap, hasAuth := payload(in, message.PayloadAUTH)
	if !hasID || !hasAuth {
		if n, ok := firstError(ns); ok {
			sa.failPhase1(shared.CausePeerRefused, fmt.Sprintf("peer answered IKE_AUTH with %s", n.Type))
		} else {
			sa.failPhase1(shared.CausePeerRefused, "peer's IKE_AUTH response lacks IDr or AUTH")
		}
		return nil
	}
	idr, _, err := message.ParseID(idp.Body)
	if err != nil {
		sa.failPhase1(shared.CausePeerRefused, "peer's IDr payload is malformed")
		return nil
	}
	peerID, ok := configID(idr)
	if !ok || !shared.IDMatches(t.conn.Remote.ID, peerID) {
		sa.authFailedByUs(shared.CauseIDMismatch, fmt.Sprintf("peer identified itself as %s, but rightid=%s", describeID(idr, peerID, ok), t.conn.Remote.ID))
		return nil
	}
	auth, _, err := message.ParseAuth(ap.Body)
	if err != nil || auth.Method != message.AuthSharedKeyMIC {
		sa.authFailedByUs(shared.CauseAuthFailed, fmt.Sprintf("peer authenticated with method %d; we expect a PSK", auth.Method))
		return nil
	}
	if t.conn.Remote.ID.Type != config.IDAny {
		peerID = sa.remoteID
	}
	psk, ok := sa.e.host.PSK(sa.localID, peerID)
	if !ok {
		sa.authFailedByUs(shared.CauseConfig, fmt.Sprintf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, peerID))
		return nil
	}
	signed := message.SignedOctets(sa.prf, sa.keys.SKpr, sa.initRsp, sa.ni, idp.Body)
	good := message.VerifyPSKAuth(sa.prf, psk, signed, auth.Data)
	clear(psk)
	if !good {
		sa.authFailedByUs(shared.CauseAuthFailed, fmt.Sprintf("peer's PSK differs (its AUTH payload did not verify) for IDs %s ↔ %s", sa.localID, peerID))
		return nil
	}
	sa.remoteID = peerID
	sa.establish(false)
	t.child.process(sa, t.conn, m, false)
	return nil
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
	sa.e.host.Authenticated(sa, sa.ids)
	sa.log.Info("IKE SA established", "conn", sa.conn.Name, "local_id", sa.localID.String(), "remote_id", sa.remoteID.String(),
		"remote", sa.remote, "algorithms", sa.alg.String(), "nat", sa.natLocal || sa.natRemote)
	sa.armDPD()
	sa.armIKERekey()
	if !rekeyed {
		sa.e.host.Emit(shared.IKEUp{Names: sa.connNames(), IKE: sa.info()})
	}
}

// servePeer tells the Host whether this SA serves its conn's peer (c, or
// nil when it stops: rekeyed, reauthenticated, deleted).
func (sa *ikeSA) servePeer(c *config.Conn) {
	sa.serving = c != nil
	sa.e.host.ServePeer(sa, c)
}

// respondAuth is the responder side of IKE_AUTH.
func (sa *ikeSA) respondAuth(m *message.Message) {
	id := m.Header.MessageID
	if sa.state != saAuth {
		sa.sendResponse(message.IKE_AUTH, id, []message.Payload{message.Notify{Type: message.INVALID_SYNTAX}})
		return
	}
	in := m.Inner
	ns := notifies(in)
	fail := func(conn string, cause shared.Cause, reason string) {
		sa.sendResponse(message.IKE_AUTH, id, []message.Payload{message.Notify{Type: message.AUTHENTICATION_FAILED}})
		if conn != "" {
			sa.conn.Name = conn
		}
		sa.failPhase1(cause, reason)
	}
	idp, _ := payload(in, message.PayloadIDi)
	ap, hasAuth := payload(in, message.PayloadAUTH)
	idi, _, err := message.ParseID(idp.Body)
	if err != nil {
		fail("", shared.CausePeerRefused, "peer's IDi payload is malformed")
		return
	}
	peerID, ok := configID(idi)
	if !ok {
		fail(sa.candidates[0].Name, shared.CauseIDMismatch, fmt.Sprintf("peer uses an ID of type %d, which PSK conns cannot match", idi.Type))
		return
	}
	var want *config.Identity
	if p, ok := payload(in, message.PayloadIDr); ok {
		if x, _, err := message.ParseID(p.Body); err == nil {
			if w, ok := configID(x); ok {
				want = &w
			}
		}
	}
	var conns []config.Conn
	for _, c := range sa.candidates {
		if !c.UsesPSK() || !shared.IDMatches(c.Remote.ID, peerID) {
			continue
		}
		if want != nil && !shared.IDMatches(shared.EffectiveID(c.Local.ID, sa.local.Addr()), *want) && c.Local.ID.Type != config.IDAny {
			continue
		}
		conns = append(conns, c)
	}
	if len(conns) == 0 {
		reason := fmt.Sprintf("peer's ID %s matches no PSK conn for %s (rightid=%s)", peerID, sa.remote.Addr(), sa.candidates[0].Remote.ID)
		if want != nil {
			reason = fmt.Sprintf("peer's ID %s asking for our ID %s matches no PSK conn for %s (rightid=%s, leftid=%s)", peerID, *want, sa.remote.Addr(), sa.candidates[0].Remote.ID, shared.EffectiveID(sa.candidates[0].Local.ID, sa.local.Addr()))
		}
		fail(sa.candidates[0].Name, shared.CauseIDMismatch, reason)
		return
	}
	c := conns[0]
	sa.conn = c
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = peerID
	if !hasAuth {
		fail(c.Name, shared.CauseAuthFailed, "peer sent no AUTH payload (EAP is not supported)")
		return
	}
	auth, _, err := message.ParseAuth(ap.Body)
	if err != nil || auth.Method != message.AuthSharedKeyMIC {
		fail(c.Name, shared.CauseAuthFailed, fmt.Sprintf("peer authenticates with method %d; conn %s expects a PSK", auth.Method, c.Name))
		return
	}
	psk, ok := sa.e.host.PSK(sa.localID, peerID)
	if !ok {
		fail(c.Name, shared.CauseConfig, fmt.Sprintf("no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, peerID))
		return
	}
	defer clear(psk)
	signedI := message.SignedOctets(sa.prf, sa.keys.SKpi, sa.initReq, sa.nr, idp.Body)
	if !message.VerifyPSKAuth(sa.prf, psk, signedI, auth.Data) {
		fail(c.Name, shared.CauseAuthFailed, fmt.Sprintf("peer's PSK differs (AUTH payload did not verify) for IDs %s ↔ %s", sa.localID, peerID))
		return
	}
	idr, ok := wireID(sa.localID, true)
	if !ok {
		fail(c.Name, shared.CauseConfig, fmt.Sprintf("our ID %s cannot be used with a PSK", sa.localID))
		return
	}
	signedR := message.SignedOctets(sa.prf, sa.keys.SKpr, sa.initRsp, sa.ni, message.AppendID(nil, idr))
	ps := []message.Payload{idr, message.Auth{Method: message.AuthSharedKeyMIC, Data: message.PSKAuth(sa.prf, psk, signedR)}}
	sa.establish(false)
	if _, ok := findNotify(ns, message.INITIAL_CONTACT); ok {
		sa.initialContact()
	}
	r := childResponse{conns: conns, ikeAuth: true, ni: sa.ni, nr: sa.nr}
	cps := r.respond(sa, in)
	sa.sendResponse(message.IKE_AUTH, id, append(ps, cps...))
}

// initialContact drops every other IKE SA with the same pair of IDs: the
// peer says it has no state for them (RFC 7296 §2.4).
func (sa *ikeSA) initialContact() {
	for _, o := range sa.e.host.Authenticated(sa, sa.ids) {
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

var _ = bytes.Equal

func spiHex(spi uint32) string { return fmt.Sprintf("%08x", spi) }
