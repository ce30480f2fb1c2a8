package ike

import (
	"bytes"
	"crypto/ecdh"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// scriptPeer is the far end of one IKE SA with an honest Manager (the
// gateway under test), written in test code on ike/ikev2/message. It
// performs every exchange honestly, except that the first message of one
// step can be replaced by a fuzzer's payload chain (arm). Protected
// messages are sealed with the SA's real keys and carry the message ID
// the gateway expects, so that the replacement passes the integrity
// check and reaches the handler behind it.
//
// Everything the peer puts into its messages is fixed (SPIs, nonces, its
// X25519 key pair), so that the honest chains it sends are the same in
// every run: they are the committed seed corpora of the stateful fuzz
// targets. What depends on the gateway's random values is filled in just
// before sealing (fixup): an AUTH payload with method 2 and all-zero
// data gets the correct PSK MAC over the chain's first IDi (IDr), and a
// NAT_DETECTION_*_IP notification with 20 zero bytes the correct hash.
//
// The peer is driven from the test goroutine: the gateway's Send only
// queues datagrams, and pump hands them to the peer once the gateway's
// loops are idle (synctest.Wait). It answers each of the gateway's
// requests once; retransmissions are ignored.
type scriptPeer struct {
	t      testing.TB
	gw     *Manager
	addr   netip.AddrPort // ours (198.51.100.1:500)
	gwAddr netip.AddrPort // the gateway's (203.0.113.1:500)
	// The proposals we accept and offer, as configured (the gateway's).
	ikeConf, espConf []config.Proposal
	ikeOff, espOff   []shared.Proposal

	mu    sync.Mutex
	inbox []packet        // sent by the gateway, not yet handled
	seen  map[string]bool // every datagram the gateway sent before the inbox's

	// The IKE SA.
	initiator        bool
	spiI, spiR       uint64
	ni, nr           []byte
	initReq, initRsp []byte
	prf              transform.PRF
	keys             message.IKEKeys
	out, in          *transform.Protector
	// trusted: the keys come from an IKE_SA_INIT both sides agree on
	// (the gateway's messages must then decrypt with them).
	trusted  bool
	nextID   uint32 // our next request
	gwNextID uint32 // the gateway's next request
	// lastInit is the last IKE_SA_INIT request of the gateway answered
	// (its retransmissions are ignored).
	lastInit []byte
	// children maps the gateway's inbound ESP SPIs to ours.
	children map[uint32]uint32
	nextSPI  uint32                         // the last of our SPIs handed out in CREATE_CHILD_SA
	reasm    map[uint32]*message.Reassembly // the gateway's fragmented messages

	// What the gateway answered to our requests, by message ID (nil
	// payloads for an empty answer); initAnswered for IKE_SA_INIT.
	answers      map[uint32][]message.RawPayload
	initAnswered bool
	// continueAuth: after the IKE_SA_INIT response, send IKE_AUTH.
	continueAuth bool
	// link is the gateway's last ADDITIONAL_KEY_EXCHANGE data (RFC 9370
	// §2.2.4), filled into a placeholder of ours (fixup).
	link []byte

	// armed replaces the first message of a step; captured records the
	// chains sent per step (seed generation).
	armed    map[step]chain
	used     map[step]bool
	captured map[step][]chain
}

// step is one message of the exchanges the peer sends.
type step uint8

const (
	stepInitReq step = iota + 1
	stepInitRsp
	stepAuthReq
	stepAuthRsp
	stepCreateReq
	stepCreateRsp
	stepInfoReq
	stepInfoRsp
	stepFollowupReq // IKE_FOLLOWUP_KE request (followupke_fuzz_test.go)
)

// chain is a payload chain as it goes inside a message: the type of the
// first payload (the header's or the SK payload's Next Payload) and the
// payloads with their generic headers.
type chain struct {
	first message.PayloadType
	body  []byte
}

// chainOf encodes payloads as a chain.
func chainOf(ps ...message.Payload) chain {
	b := message.AppendMessage(nil, message.Header{MajorVersion: 2}, ps...)
	return chain{first: message.PayloadType(b[16]), body: b[message.HeaderLen:]}
}

// The peer's fixed values.
var (
	peerSPI      = uint64(0x5ca1ab1e00c0ffee)
	peerRekeySPI = uint64(0x5ca1ab1e00beef00) // the SPI of the IKE SA a rekey creates
	peerNonceI   = bytes.Repeat([]byte{0x4e}, 32)
	peerNonceR   = bytes.Repeat([]byte{0x6e}, 32)
	peerNonceC   = bytes.Repeat([]byte{0x7c}, 32) // CREATE_CHILD_SA
	peerESPBase  = uint32(0xa0000000)
	peerPSK      = []byte("correct horse battery staple")
	peerKey      = func() *ecdh.PrivateKey {
		k, err := ecdh.X25519().NewPrivateKey(bytes.Repeat([]byte{0x42}, 32))
		if err != nil {
			panic(err)
		}
		return k
	}()
	peerPub     = peerKey.PublicKey().Bytes()
	peerNet     = netip.MustParsePrefix("10.1.0.0/24")
	gwNet       = netip.MustParsePrefix("10.2.0.0/24")
	gwNet2      = netip.MustParsePrefix("10.2.1.0/24")
	natZero     = make([]byte, 20)
	sigHashData = []byte{0, 2, 0, 3, 0, 4}
)

func newScriptPeer(t testing.TB, ikeConf, espConf []config.Proposal) *scriptPeer {
	return &scriptPeer{
		t: t, addr: netip.AddrPortFrom(addrA, 500), gwAddr: netip.AddrPortFrom(addrB, 500),
		ikeConf: ikeConf, espConf: espConf,
		ikeOff: shared.Offer(ikeConf, shared.ProtoIKE, nil, false), espOff: shared.Offer(espConf, shared.ProtoESP, nil, false),
		children: map[uint32]uint32{}, nextSPI: peerESPBase + 0x10, reasm: map[uint32]*message.Reassembly{},
		answers: map[uint32][]message.RawPayload{}, seen: map[string]bool{},
		armed: map[step]chain{}, used: map[step]bool{}, captured: map[step][]chain{},
	}
}

// send is the gateway's Options.Send: it only queues.
func (p *scriptPeer) send(local, remote netip.AddrPort, pkt []byte) error {
	p.mu.Lock()
	p.inbox = append(p.inbox, packet{local, remote, bytes.Clone(pkt)})
	p.mu.Unlock()
	return nil
}

func (p *scriptPeer) take() []packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.inbox
	p.inbox = nil
	for _, pk := range in {
		p.seen[string(pk.data)] = true
	}
	return in
}

// replays reports whether the gateway sent nothing since the inbox held
// n datagrams but copies of datagrams it had sent before (a cached
// response, answering what looked like a retransmitted request).
func (p *scriptPeer) replays(n int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, pk := range p.inbox[n:] {
		if !p.seen[string(pk.data)] && !slices.ContainsFunc(p.inbox[:n+i], func(q packet) bool { return bytes.Equal(q.data, pk.data) }) {
			return false
		}
	}
	return true
}

// pump lets the gateway work and handles what it sends until it is quiet.
func (p *scriptPeer) pump() {
	for {
		synctest.Wait()
		in := p.take()
		if len(in) == 0 {
			return
		}
		for _, pk := range in {
			p.handle(pk)
		}
	}
}

// pending counts the datagrams the gateway sent that pump has not
// handled.
func (p *scriptPeer) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inbox)
}

func (p *scriptPeer) arm(s step, c chain) { p.armed[s] = c }

// next returns what the peer sends at step s: the armed replacement the
// first time, the honest chain otherwise.
func (p *scriptPeer) next(s step, honest func() chain) chain {
	if c, ok := p.armed[s]; ok && !p.used[s] {
		p.used[s] = true
		return c
	}
	c := honest()
	p.captured[s] = append(p.captured[s], chain{c.first, bytes.Clone(c.body)})
	return c
}

// deliver hands a datagram to the gateway.
func (p *scriptPeer) deliver(pkt []byte) { p.gw.HandlePacket(p.gwAddr, p.addr, pkt) }

// header is the IKE header of our message.
func (p *scriptPeer) header(ex message.ExchangeType, id uint32, response bool) message.Header {
	h := message.Header{SPIi: p.spiI, SPIr: p.spiR, MajorVersion: 2, Exchange: ex, MessageID: id}
	if p.initiator {
		h.Flags |= message.FlagInitiator
	}
	if response {
		h.Flags |= message.FlagResponse
	}
	return h
}

// plain builds an unprotected message (IKE_SA_INIT) around a chain.
func plain(h message.Header, c chain) []byte {
	h.NextPayload = c.first
	h.Length = uint32(message.HeaderLen + len(c.body))
	return append(message.AppendHeader(nil, h), c.body...)
}

// seal builds a protected message with our keys around pt, the
// plaintext (c's payloads or a share of them): an SK payload, or with
// frag set an SKF payload with those fragment fields (RFC 7383 §2.5),
// whatever they say; c.first is the Next Payload. forge flips a bit of
// the ICV.
func (p *scriptPeer) seal(h message.Header, c chain, frag *message.FragmentHeader, pt []byte, forge bool) []byte {
	if len(pt) > maxSealed {
		p.t.Fatalf("%d bytes do not fit one SK payload", len(pt))
	}
	h.NextPayload = message.PayloadSK
	if frag != nil {
		h.NextPayload = message.PayloadSKF
	}
	b := message.AppendHeader(nil, h)
	sk := len(b)
	b = append(b, byte(c.first), 0, 0, 0)
	if frag != nil {
		b = message.AppendFragmentHeader(b, *frag)
	}
	ivOff := len(b)
	b = append(b, make([]byte, p.out.IVSize())...)
	b = append(b, pt...)
	pad := 0
	if bs := p.out.BlockSize(); bs > 1 {
		pad = (bs - (len(pt)+1)%bs) % bs
	}
	b = append(b, make([]byte, pad)...)
	b = append(b, byte(pad))
	b = append(b, make([]byte, p.out.ICVSize())...)
	binary.BigEndian.PutUint16(b[sk+2:], uint16(len(b)-sk))
	binary.BigEndian.PutUint32(b[24:], uint32(len(b)))
	if err := p.out.NextIV(b[ivOff : ivOff+p.out.IVSize()]); err != nil {
		p.t.Fatal(err)
	}
	if err := p.out.Seal(b, ivOff, nil, nil); err != nil {
		p.t.Fatal(err)
	}
	if forge {
		b[len(b)-1] ^= 1
	}
	return b
}

// maxSealed bounds the plaintext of one SK payload (its length field is
// 16 bits; header, IV, padding and ICV need room too).
const maxSealed = 0xffff - 1024

// walk calls f for each payload of a chain (type and body, which f may
// change in place) until the chain ends or is malformed.
func walk(c chain, f func(typ message.PayloadType, body []byte)) {
	typ, off := c.first, 0
	for typ != message.PayloadNone && off+message.GenericHeaderLen <= len(c.body) {
		n := int(binary.BigEndian.Uint16(c.body[off+2:]))
		if n < message.GenericHeaderLen || off+n > len(c.body) {
			return
		}
		f(typ, c.body[off+message.GenericHeaderLen:off+n])
		typ = message.PayloadType(c.body[off])
		off += n
	}
}

// fixup fills in the placeholders of a chain we send in a message with
// header h (see scriptPeer), on a copy.
func (p *scriptPeer) fixup(h message.Header, c chain) chain {
	c.body = bytes.Clone(c.body)
	idType := message.PayloadIDi
	if !p.initiator {
		idType = message.PayloadIDr
	}
	var idBody []byte
	walk(c, func(typ message.PayloadType, body []byte) {
		if typ == idType && idBody == nil {
			idBody = body
		}
	})
	walk(c, func(typ message.PayloadType, body []byte) {
		switch typ {
		case message.PayloadAUTH:
			if p.prf == nil || idBody == nil || len(body) != 4+p.prf.Size() || body[0] != byte(message.AuthSharedKeyMIC) || !allZero(body[4:]) {
				return
			}
			copy(body[4:], p.authData(idBody))
		case message.PayloadN:
			// ADDITIONAL_KEY_EXCHANGE with 8 zero bytes: the gateway's link.
			if len(body) == 4+len(p.link) && len(p.link) == 8 && body[1] == 0 && allZero(body[4:]) &&
				message.NotifyType(binary.BigEndian.Uint16(body[2:])) == message.ADDITIONAL_KEY_EXCHANGE {
				copy(body[4:], p.link)
				return
			}
			// Protocol ID, SPI Size 0, type, 20 bytes of data.
			if len(body) != 24 || body[1] != 0 || !allZero(body[4:]) {
				return
			}
			switch message.NotifyType(binary.BigEndian.Uint16(body[2:])) {
			case message.NAT_DETECTION_SOURCE_IP:
				hh := message.NATDetectionHash(h.SPIi, h.SPIr, p.addr)
				copy(body[4:], hh[:])
			case message.NAT_DETECTION_DESTINATION_IP:
				hh := message.NATDetectionHash(h.SPIi, h.SPIr, p.gwAddr)
				copy(body[4:], hh[:])
			}
		}
	})
	return c
}

// authData is our AUTH payload data for the ID payload body idBody (RFC
// 7296 §2.15): we sign our IKE_SA_INIT message and the gateway's nonce.
func (p *scriptPeer) authData(idBody []byte) []byte {
	if p.initiator {
		return message.PSKAuth(p.prf, peerPSK, message.SignedOctets(p.prf, p.keys.SKpi, p.initReq, p.nr, idBody))
	}
	return message.PSKAuth(p.prf, peerPSK, message.SignedOctets(p.prf, p.keys.SKpr, p.initRsp, p.ni, idBody))
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// sendInitRequest starts the IKE SA as its initiator.
func (p *scriptPeer) sendInitRequest() {
	p.initiator, p.spiI, p.spiR = true, peerSPI, 0
	c := p.next(stepInitReq, p.honestInitRequest)
	h := p.header(message.IKE_SA_INIT, 0, false)
	p.initReq = plain(h, p.fixup(h, c))
	p.nextID = 1
	p.deliver(p.initReq)
}

// sendRequest sends a protected request (the next message ID) with the
// chain of step s.
func (p *scriptPeer) sendRequest(ex message.ExchangeType, s step, honest func() chain) uint32 {
	id := p.nextID
	p.nextID++
	h := p.header(ex, id, false)
	c := p.fixup(h, p.next(s, honest))
	p.deliver(p.seal(h, c, nil, c.body, false))
	return id
}

// answer sends a protected response to the gateway's request id.
func (p *scriptPeer) answer(ex message.ExchangeType, id uint32, c chain) {
	h := p.header(ex, id, true)
	c = p.fixup(h, c)
	p.deliver(p.seal(h, c, nil, c.body, false))
}

// handle takes one datagram from the gateway.
func (p *scriptPeer) handle(pk packet) {
	m, _, err := message.ParseMessage(pk.data)
	if err == nil {
		err = message.Validate(&m)
	}
	if err != nil {
		p.t.Errorf("the gateway sent a malformed message: %v", err)
		return
	}
	h := m.Header
	if h.Exchange == message.IKE_SA_INIT {
		if h.IsResponse() {
			p.initResponse(&m)
		} else {
			p.initRequest(&m)
		}
		return
	}
	if h.SPIi != p.spiI || h.SPIr != p.spiR || p.in == nil {
		return // another IKE SA (a rekeyed one): not ours to follow
	}
	inner, ok := p.open(&m)
	if !ok {
		return
	}
	if h.IsResponse() {
		if _, seen := p.answers[h.MessageID]; !seen {
			p.answers[h.MessageID] = inner
		}
		if h.Exchange == message.IKE_AUTH {
			p.authResponse(inner)
		}
		return
	}
	if h.MessageID < p.gwNextID {
		return // a retransmission
	}
	if h.MessageID != p.gwNextID {
		p.t.Errorf("the gateway's request has message ID %d, want %d", h.MessageID, p.gwNextID)
	}
	p.gwNextID = h.MessageID + 1
	switch h.Exchange {
	case message.IKE_AUTH:
		p.answer(h.Exchange, h.MessageID, p.next(stepAuthRsp, func() chain { return p.honestAuthResponse(inner) }))
	case message.CREATE_CHILD_SA:
		p.answer(h.Exchange, h.MessageID, p.next(stepCreateRsp, func() chain { return p.honestCreateResponse(inner) }))
	case message.INFORMATIONAL:
		p.answer(h.Exchange, h.MessageID, p.next(stepInfoRsp, func() chain { return p.honestInfoResponse(inner) }))
	}
}

// open decrypts a protected message of the gateway (reassembling
// fragments). With trusted keys anything that does not decrypt is a
// failure of the gateway.
func (p *scriptPeer) open(m *message.Message) ([]message.RawPayload, bool) {
	sk, _ := m.Encrypted()
	var err error
	if sk.Type == message.PayloadSKF {
		var fh message.FragmentHeader
		var part []byte
		fh, part, err = message.DecryptFragment(m, p.in)
		if err == nil {
			r := p.reasm[m.Header.MessageID]
			if r == nil {
				r = new(message.Reassembly)
				p.reasm[m.Header.MessageID] = r
			}
			var done bool
			if done, err = r.Add(m, fh, part); err == nil && !done {
				return nil, false
			}
			if err == nil {
				delete(p.reasm, m.Header.MessageID)
				err = r.Complete(m)
			}
		}
	} else {
		err = message.Decrypt(m, p.in)
	}
	if err == nil {
		err = message.Validate(m)
	}
	if err != nil {
		if p.trusted {
			p.t.Errorf("the gateway's %s message %d does not decrypt with the SA's keys: %v", m.Header.Exchange, m.Header.MessageID, err)
		}
		return nil, false
	}
	return m.Inner, true
}

// peerSecrets memoizes peerShared: the peer's key is fixed, and with the
// gateway's randomness made deterministic (fuzzInput) so is the
// gateway's public value of every honest exchange, so each fuzz worker
// computes each shared secret once instead of once an input.
var (
	peerSecrets  sync.Map // string(gateway's public value) → []byte
	peerSecretsN atomic.Int64
)

// maxPeerSecrets bounds peerSecrets: tests without deterministic
// randomness see a new gateway value every time.
const maxPeerSecrets = 1024

// peerShared is the X25519 shared secret of peerKey and the gateway's
// public value gwKE, in a slice of the caller's (which may wipe it).
func peerShared(gwKE []byte) ([]byte, error) {
	if s, ok := peerSecrets.Load(string(gwKE)); ok {
		return bytes.Clone(s.([]byte)), nil
	}
	pub, err := ecdh.X25519().NewPublicKey(gwKE)
	if err != nil {
		return nil, err
	}
	s, err := peerKey.ECDH(pub)
	if err != nil {
		return nil, err
	}
	if peerSecretsN.Add(1) <= maxPeerSecrets {
		peerSecrets.Store(string(gwKE), bytes.Clone(s))
	}
	return s, nil
}

// deriveKeys keys the IKE SA from IKE_SA_INIT (RFC 7296 §2.14).
func (p *scriptPeer) deriveKeys(sel shared.Selection, gwKE []byte) bool {
	gir, err := peerShared(gwKE)
	if err != nil {
		return false
	}
	prf, err := transform.NewPRF(sel.PRF.ID)
	if err != nil {
		return false
	}
	seed := message.SKEYSEED(prf, p.ni, p.nr, gir)
	keys, err := message.DeriveIKEKeys(prf, sel.Encr, sel.Integ, seed, p.ni, p.nr, p.spiI, p.spiR)
	if err != nil {
		return false
	}
	out, in, err := keys.Protectors(sel.Encr, sel.Integ, p.initiator)
	if err != nil {
		return false
	}
	p.prf, p.keys, p.out, p.in = prf, keys, out, in
	return true
}

// initResponse: the gateway answered our IKE_SA_INIT request. The keys
// come from the request we sent (whatever the fuzzer put there: our
// X25519 value must be its first KE payload) and the answer.
func (p *scriptPeer) initResponse(m *message.Message) {
	if m.Header.SPIi != p.spiI || !p.initiator || p.initAnswered {
		return
	}
	p.initAnswered = true
	req, _, err := message.ParseMessage(p.initReq)
	if err != nil {
		return
	}
	reqSA, ok1 := firstOf[message.SA](req.Payloads, message.PayloadSA, message.ParseSA)
	reqKE, ok2 := firstOf[message.KE](req.Payloads, message.PayloadKE, message.ParseKE)
	reqN, ok3 := firstOf[message.Nonce](req.Payloads, message.PayloadNonce, message.ParseNonce)
	rspSA, ok4 := firstOf[message.SA](m.Payloads, message.PayloadSA, message.ParseSA)
	rspKE, ok5 := firstOf[message.KE](m.Payloads, message.PayloadKE, message.ParseKE)
	rspN, ok6 := firstOf[message.Nonce](m.Payloads, message.PayloadNonce, message.ParseNonce)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || m.Header.SPIr == 0 ||
		reqKE.Group != transform.KECurve25519 || rspKE.Group != transform.KECurve25519 || !bytes.Equal(reqKE.Data, peerPub) {
		return
	}
	sel, ok := shared.Accept(toShared(reqSA), toShared(rspSA), shared.ProtoIKE, false)
	if !ok || sel.KE.ID != transform.KECurve25519 {
		return
	}
	p.spiR = m.Header.SPIr
	p.ni, p.nr = bytes.Clone(reqN.Data), bytes.Clone(rspN.Data)
	if !p.deriveKeys(sel, rspKE.Data) {
		return
	}
	// The gateway took our request as it was, so both sides hold the
	// same keys.
	p.trusted = true
	if p.continueAuth {
		p.sendRequest(message.IKE_AUTH, stepAuthReq, p.honestAuthRequest)
	}
}

// authResponse: with the honest exchange the gateway must have
// authenticated us (checked by the callers through its status).
func (p *scriptPeer) authResponse(inner []message.RawPayload) {
	if sa, ok := firstOf[message.SA](inner, message.PayloadSA, message.ParseSA); ok && len(sa.Proposals) == 1 {
		if gw, ok := spiOf(sa.Proposals[0].SPI); ok {
			p.children[gw] = peerESPBase + 1
		}
	}
}

// initRequest: the gateway starts an IKE SA (or retries after a COOKIE
// or INVALID_KE_PAYLOAD); we answer each new request once.
func (p *scriptPeer) initRequest(m *message.Message) {
	if bytes.Equal(m.Raw, p.lastInit) {
		return // a retransmission
	}
	p.lastInit = bytes.Clone(m.Raw)
	p.initiator, p.spiI, p.spiR = false, m.Header.SPIi, peerSPI
	p.trusted, p.in, p.out, p.prf = false, nil, nil, nil
	p.nextID, p.gwNextID = 0, 1
	h := p.header(message.IKE_SA_INIT, 0, true)
	c := p.fixup(h, p.next(stepInitRsp, func() chain { return p.honestInitResponse(m) }))
	p.initRsp = plain(h, c)
	p.deliver(p.initRsp)
	// Key the SA as the gateway will, if it takes our answer.
	rsp, _, err := message.ParseMessage(p.initRsp)
	if err != nil || message.Validate(&rsp) != nil {
		return
	}
	reqSA, ok1 := firstOf[message.SA](m.Payloads, message.PayloadSA, message.ParseSA)
	reqKE, ok2 := firstOf[message.KE](m.Payloads, message.PayloadKE, message.ParseKE)
	reqN, ok3 := firstOf[message.Nonce](m.Payloads, message.PayloadNonce, message.ParseNonce)
	rspSA, ok4 := firstOf[message.SA](rsp.Payloads, message.PayloadSA, message.ParseSA)
	rspKE, ok5 := firstOf[message.KE](rsp.Payloads, message.PayloadKE, message.ParseKE)
	rspN, ok6 := firstOf[message.Nonce](rsp.Payloads, message.PayloadNonce, message.ParseNonce)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || reqKE.Group != transform.KECurve25519 ||
		rspKE.Group != transform.KECurve25519 || !bytes.Equal(rspKE.Data, peerPub) {
		return
	}
	for _, n := range notifiesOf(rsp.Payloads) {
		if n.Type == message.COOKIE || n.Type.IsError() {
			return // the gateway starts over or gives up
		}
	}
	sel, ok := shared.Accept(toShared(reqSA), toShared(rspSA), shared.ProtoIKE, false)
	if !ok || sel.KE.ID != transform.KECurve25519 {
		return
	}
	p.ni, p.nr = bytes.Clone(reqN.Data), bytes.Clone(rspN.Data)
	p.trusted = p.deriveKeys(sel, reqKE.Data)
}

// firstOf decodes the first payload of type typ.
func firstOf[T any](ps []message.RawPayload, typ message.PayloadType, parse func([]byte) (T, int, error)) (T, bool) {
	for _, p := range ps {
		if p.Type == typ {
			x, _, err := parse(p.Body)
			return x, err == nil
		}
	}
	var zero T
	return zero, false
}

// toShared converts an SA payload's proposals (as the engine does,
// leaving out transforms with attributes other than Key Length).
func toShared(sa message.SA) []shared.Proposal {
	var out []shared.Proposal
	for _, p := range sa.Proposals {
		sp := shared.Proposal{Number: p.Number, Protocol: shared.Protocol(p.Protocol), SPI: p.SPI}
		for _, t := range p.Transforms {
			if len(t.Attrs) == 0 {
				sp.Transforms = append(sp.Transforms, t.Transform)
			}
		}
		out = append(out, sp)
	}
	return out
}

func toWire(ps ...shared.Proposal) message.SA {
	var sa message.SA
	for _, p := range ps {
		wp := message.Proposal{Number: p.Number, Protocol: message.ProtocolID(p.Protocol), SPI: p.SPI}
		for _, t := range p.Transforms {
			wp.Transforms = append(wp.Transforms, message.Transform{Transform: t})
		}
		sa.Proposals = append(sa.Proposals, wp)
	}
	return sa
}

func spiOf(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

func spi4(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func ts(prefixes ...netip.Prefix) []message.TrafficSelector {
	var out []message.TrafficSelector
	for _, p := range prefixes {
		r := p.Masked()
		last := r.Addr().As4()
		host := ^uint32(0) >> r.Bits()
		v := binary.BigEndian.Uint32(last[:]) | host
		binary.BigEndian.PutUint32(last[:], v)
		out = append(out, message.TrafficSelector{Type: message.TSIPv4AddrRange, StartPort: 0, EndPort: 65535,
			Start: r.Addr(), End: netip.AddrFrom4(last)})
	}
	return out
}

func idPayload(responder bool) message.ID {
	a := addrA.As4()
	return message.ID{Responder: responder, Type: message.IDIPv4Addr, Data: a[:]}
}

func authPlaceholder(prf transform.PRF) message.Auth {
	n := 32
	if prf != nil {
		n = prf.Size()
	}
	return message.Auth{Method: message.AuthSharedKeyMIC, Data: make([]byte, n)}
}

// The honest messages, built the way ipsecgw builds its own.

func (p *scriptPeer) honestInitRequest() chain {
	return chainOf(
		toWire(p.ikeOff...),
		message.KE{Group: transform.KECurve25519, Data: peerPub},
		message.Nonce{Data: peerNonceI},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natZero},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natZero},
		message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED},
		message.Notify{Type: message.SIGNATURE_HASH_ALGORITHMS, Data: sigHashData},
	)
}

func (p *scriptPeer) honestInitResponse(req *message.Message) chain {
	reqSA, _ := firstOf[message.SA](req.Payloads, message.PayloadSA, message.ParseSA)
	reqKE, _ := firstOf[message.KE](req.Payloads, message.PayloadKE, message.ParseKE)
	sel, ok := shared.Select(p.ikeOff, toShared(reqSA), shared.ProtoIKE, false, reqKE.Group)
	if !ok {
		return chainOf(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
	}
	if sel.KE.ID != reqKE.Group {
		return chainOf(message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: binary.BigEndian.AppendUint16(nil, uint16(sel.KE.ID))})
	}
	ps := []message.Payload{
		toWire(sel.Proposal(shared.ProtoIKE, nil)),
		message.KE{Group: sel.KE.ID, Data: peerPub},
		message.Nonce{Data: peerNonceR},
		message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natZero},
		message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natZero},
	}
	for _, n := range notifiesOf(req.Payloads) {
		if n.Type == message.IKEV2_FRAGMENTATION_SUPPORTED {
			ps = append(ps, message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED})
			break
		}
	}
	return chainOf(ps...)
}

func (p *scriptPeer) honestAuthRequest() chain {
	return chainOf(
		idPayload(false),
		message.Notify{Type: message.INITIAL_CONTACT},
		authPlaceholder(p.prf),
		toWire(shared.Offer(p.espConf, shared.ProtoESP, spi4(peerESPBase+1), true)...),
		message.TrafficSelectors{TS: ts(peerNet)},
		message.TrafficSelectors{Responder: true, TS: ts(gwNet)},
	)
}

// childAnswer selects from the gateway's CHILD SA offer and answers with
// our SPI and the selectors it proposed (we accept them as they are).
func (p *scriptPeer) childAnswer(in []message.RawPayload, ikeAuth bool, spi uint32) []message.Payload {
	sa, ok1 := firstOf[message.SA](in, message.PayloadSA, message.ParseSA)
	tsi, ok2 := firstOf[message.TrafficSelectors](in, message.PayloadTSi, message.ParseTrafficSelectors)
	tsr, ok3 := firstOf[message.TrafficSelectors](in, message.PayloadTSr, message.ParseTrafficSelectors)
	if !ok1 || !ok2 || !ok3 {
		return []message.Payload{message.Notify{Type: message.INVALID_SYNTAX}}
	}
	var prefer transform.ID
	if ke, ok := firstOf[message.KE](in, message.PayloadKE, message.ParseKE); ok {
		prefer = ke.Group
	}
	sel, ok := shared.Select(p.espOff, toShared(sa), shared.ProtoESP, ikeAuth, prefer)
	if !ok {
		return []message.Payload{message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	for _, x := range sa.Proposals {
		if x.Number == sel.Number {
			if gw, ok := spiOf(x.SPI); ok {
				p.children[gw] = spi
			}
		}
	}
	ps := []message.Payload{toWire(sel.Proposal(shared.ProtoESP, spi4(spi)))}
	if !ikeAuth {
		ps = append(ps, message.Nonce{Data: peerNonceC})
		if sel.KE.ID != transform.KENone {
			ps = append(ps, message.KE{Group: sel.KE.ID, Data: peerPub})
		}
	}
	tsr.Responder = true
	return append(ps, tsi, tsr)
}

func (p *scriptPeer) honestAuthResponse(in []message.RawPayload) chain {
	ps := []message.Payload{idPayload(true), authPlaceholder(p.prf)}
	return chainOf(append(ps, p.childAnswer(in, true, peerESPBase+1)...)...)
}

func (p *scriptPeer) honestCreateResponse(in []message.RawPayload) chain {
	sa, ok := firstOf[message.SA](in, message.PayloadSA, message.ParseSA)
	if !ok || len(sa.Proposals) == 0 {
		return chainOf(message.Notify{Type: message.INVALID_SYNTAX})
	}
	if sa.Proposals[0].Protocol != message.ProtoIKE {
		p.nextSPI++
		return chainOf(p.childAnswer(in, false, p.nextSPI)...)
	}
	ke, _ := firstOf[message.KE](in, message.PayloadKE, message.ParseKE)
	sel, ok := shared.Select(p.ikeOff, toShared(sa), shared.ProtoIKE, false, ke.Group)
	if !ok {
		return chainOf(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
	}
	return chainOf(
		toWire(sel.Proposal(shared.ProtoIKE, binary.BigEndian.AppendUint64(nil, peerRekeySPI))),
		message.Nonce{Data: peerNonceC},
		message.KE{Group: sel.KE.ID, Data: peerPub},
	)
}

// honestInfoResponse answers deletes of CHILD SAs with ours (RFC 7296
// §1.4.1); anything else with an empty answer.
func (p *scriptPeer) honestInfoResponse(in []message.RawPayload) chain {
	var ours []uint32
	for _, x := range in {
		if x.Type != message.PayloadD {
			continue
		}
		d, _, err := message.ParseDelete(x.Body)
		if err != nil || d.Protocol != message.ProtoESP {
			continue
		}
		for _, s := range d.SPIs {
			if o, ok := p.children[s]; ok {
				ours = append(ours, o)
			}
		}
	}
	if len(ours) == 0 {
		return chain{}
	}
	return chainOf(message.Delete{Protocol: message.ProtoESP, SPIs: ours})
}

// Requests the peer makes once the IKE SA is up (the CREATE_CHILD_SA and
// INFORMATIONAL shapes the seeds cover).

func (p *scriptPeer) childCreateRequest() chain {
	return chainOf(
		toWire(shared.Offer(p.espConf, shared.ProtoESP, spi4(peerESPBase+2), false)...),
		message.Nonce{Data: peerNonceC},
		message.KE{Group: transform.KECurve25519, Data: peerPub},
		message.TrafficSelectors{TS: ts(peerNet)},
		message.TrafficSelectors{Responder: true, TS: ts(gwNet2)},
	)
}

func (p *scriptPeer) childRekeyRequest() chain {
	return chainOf(
		message.Notify{Protocol: message.ProtoESP, Type: message.REKEY_SA, SPI: spi4(peerESPBase + 1)},
		toWire(shared.Offer(p.espConf, shared.ProtoESP, spi4(peerESPBase+3), false)...),
		message.Nonce{Data: peerNonceC},
		message.KE{Group: transform.KECurve25519, Data: peerPub},
		message.TrafficSelectors{TS: ts(peerNet)},
		message.TrafficSelectors{Responder: true, TS: ts(gwNet)},
	)
}

func (p *scriptPeer) ikeRekeyRequest() chain {
	return chainOf(
		toWire(shared.Offer(p.ikeConf, shared.ProtoIKE, binary.BigEndian.AppendUint64(nil, peerRekeySPI), false)...),
		message.Nonce{Data: peerNonceC},
		message.KE{Group: transform.KECurve25519, Data: peerPub},
	)
}

// infoRequests are the INFORMATIONAL requests of the seeds: a liveness
// check, deletes of the CHILD and the IKE SA, INVALID_SPI.
var infoRequests = []struct {
	name string
	c    func() chain
}{
	{"DPD", func() chain { return chain{} }},
	{"delete CHILD SA", func() chain {
		return chainOf(message.Delete{Protocol: message.ProtoESP, SPIs: []uint32{peerESPBase + 1}})
	}},
	{"delete IKE SA", func() chain { return chainOf(message.Delete{Protocol: message.ProtoIKE}) }},
	{"INVALID_SPI", func() chain {
		return chainOf(message.Notify{Protocol: message.ProtoESP, Type: message.INVALID_SPI, Data: spi4(0x12345678)})
	}},
}

func (s step) String() string {
	return [...]string{"?", "IKE_SA_INIT request", "IKE_SA_INIT response", "IKE_AUTH request", "IKE_AUTH response",
		"CREATE_CHILD_SA request", "CREATE_CHILD_SA response", "INFORMATIONAL request", "INFORMATIONAL response",
		"IKE_FOLLOWUP_KE request"}[s]
}
