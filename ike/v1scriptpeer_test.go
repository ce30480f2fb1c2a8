package ike

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// v1Peer is scriptPeer for IKEv1: the far end of one ISAKMP SA with an
// honest Manager (the gateway under test), written in test code on
// ike/ikev1/isakmp and ike/ikev1/keymat. It runs main mode with a
// pre-shared key in either role, quick mode in either role and
// informational exchanges, honestly, except that the first message of
// one step can be replaced by a fuzzer's payload chain (arm). Encrypted
// messages are encrypted with the ISAKMP SA's real key and the IV the
// gateway's chain holds for their message ID, so that the replacement
// decrypts and reaches the handler behind it.
//
// Everything the peer puts into its messages is fixed (cookie, nonces,
// SPIs, message IDs, its X25519 key pair), so that the honest chains are
// the same in every run: they are the committed seed corpora of the
// stateful IKEv1 targets. What depends on the gateway's random values is
// filled in just before encryption (fixup):
//
//   - a HASH payload of the PRF's size with all-zero data gets the hash
//     the message needs: HASH_I or HASH_R over the chain's first ID
//     payload in main mode, HASH(1), HASH(2), HASH(3) in quick mode and
//     the informational HASH, each over the payloads after it (the
//     fuzzer reaches the handlers with valid hashes over its payloads,
//     and without, by leaving the placeholder);
//   - a notification or delete of protocol ISAKMP whose 16-byte SPI is
//     zero gets the cookies of the SA (INITIAL-CONTACT, R-U-THERE, the
//     ISAKMP SA's delete).
//
// IKEv1 has no integrity check of its own on encrypted messages: the
// receiver moves its IV chain only for a message that verified. The
// peer cannot know whether the gateway took a fuzzed message, so it
// keeps the IV from before it (alt) and decrypts the gateway's messages
// with either; what the gateway sends must decrypt with one of them and
// verify (its HASH).
//
// The peer is driven from the test goroutine like scriptPeer: Send only
// queues, pump hands the datagrams to the peer once the gateway's loops
// are idle. Each message of the gateway is handled once; retransmissions
// are ignored.
type v1Peer struct {
	t      testing.TB
	gw     *Manager
	addr   netip.AddrPort // ours (198.51.100.1:500)
	gwAddr netip.AddrPort // the gateway's (203.0.113.1:500)
	// The proposals we offer and accept (the gateway's conn's).
	ikeConf, espConf []config.Proposal
	ikeOff, espOff   []shared.Proposal

	mu    sync.Mutex
	inbox []packet
	seen  map[string]bool // every datagram of the gateway handled

	// Phase 1 (aggressive: in aggressive mode, as its initiator, idiB
	// being our ID payload body of message 1).
	aggressive bool
	idiB       []byte
	initiator  bool
	ckyI, ckyR uint64
	saIBody    []byte // SAi_b: the initiator's SA payload body of message 1
	offered    isakmp.SA
	gxi, gxr   []byte
	ni, nr     []byte
	suite      keymat.Suite
	keys       *keymat.Keys
	round      int  // the last main mode message sent or handled
	trusted    bool // both sides derived the keys from the same exchange
	phase1Done bool
	// continueQuick: once main mode completed, start quick mode.
	continueQuick bool

	// The IV chain as we see it (message ID 0: phase 1) and, after a
	// fuzzed message, the IVs from before it (the gateway's, when it
	// refused the message).
	ivs, alt map[uint32][]byte

	qm map[uint32]*v1Quick
	// quickModes counts the quick modes we started: the n-th has
	// message ID v1QuickMID+n and our SPI v1PeerSPI+n.
	quickModes uint32

	// got records the gateway's messages after phase 1 as they
	// decrypted (exchange, message ID, payloads).
	got []v1Got

	armed    map[v1Step]v1Chain
	used     map[v1Step]bool
	captured map[v1Step][]v1Chain
	// onFuzzed, when set, is called just before the armed message goes
	// out (as fixed up).
	onFuzzed func(s v1Step, mid uint32, c v1Chain)
	// received counts the gateway's datagrams (retransmissions too).
	received int
}

// v1Quick is one quick mode.
type v1Quick struct {
	ours   bool // we initiated it
	ni, nr []byte
	done   bool // message 3 sent or received
}

type v1Got struct {
	ex       isakmp.ExchangeType
	mid      uint32
	payloads []isakmp.RawPayload
}

// v1Step is one message the peer sends.
type v1Step uint8

const (
	v1StepMM1 v1Step = iota + 1
	v1StepMM2
	v1StepMM3
	v1StepMM4
	v1StepMM5
	v1StepMM6
	v1StepQM1
	v1StepQM2
	v1StepQM3
	v1StepInfo
	v1StepAM1
	v1StepAM3
)

func (s v1Step) String() string {
	return [...]string{"?", "main mode 1", "main mode 2", "main mode 3", "main mode 4", "main mode 5", "main mode 6",
		"quick mode 1", "quick mode 2", "quick mode 3", "informational", "aggressive mode 1", "aggressive mode 3"}[s]
}

// v1Chain is an ISAKMP payload chain: the type of the first payload (the
// header's Next Payload) and the payloads with their generic headers.
type v1Chain struct {
	first isakmp.PayloadType
	body  []byte
}

func v1ChainOf(ps ...isakmp.Payload) v1Chain {
	b := isakmp.AppendMessage(nil, isakmp.Header{CookieI: 1}, ps...)
	return v1Chain{first: isakmp.PayloadType(b[16]), body: b[isakmp.HeaderLen:]}
}

// The peer's fixed values besides those scriptPeer shares (its X25519
// key, nonces, PSK).
var (
	v1PeerCookie = uint64(0x5ca1ab1e000001c1)
	v1QuickMID   = uint32(0x51c0de01) // the quick mode we start
	v1InfoMID    = uint32(0x1f0de002) // the informational we send
	v1PeerSPI    = uint32(0xa1000001)
	v1Nonce      = bytes.Repeat([]byte{0x31}, 32)
	v1QuickNonce = bytes.Repeat([]byte{0x32}, 32)
	cookieZero   = make([]byte, 16)
)

func newV1Peer(t testing.TB, ikeConf, espConf []config.Proposal) *v1Peer {
	return &v1Peer{
		t: t, addr: netip.AddrPortFrom(addrA, 500), gwAddr: netip.AddrPortFrom(addrB, 500),
		ikeConf: ikeConf, espConf: espConf,
		ikeOff: shared.Offer(ikeConf, shared.ProtoIKE, nil, false), espOff: shared.Offer(espConf, shared.ProtoESP, nil, false),
		seen: map[string]bool{}, ivs: map[uint32][]byte{}, alt: map[uint32][]byte{}, qm: map[uint32]*v1Quick{},
		armed: map[v1Step]v1Chain{}, used: map[v1Step]bool{}, captured: map[v1Step][]v1Chain{},
	}
}

func (p *v1Peer) send(local, remote netip.AddrPort, pkt []byte) error {
	p.mu.Lock()
	p.inbox = append(p.inbox, packet{local, remote, bytes.Clone(pkt)})
	p.mu.Unlock()
	return nil
}

func (p *v1Peer) take() []packet {
	p.mu.Lock()
	defer p.mu.Unlock()
	in := p.inbox
	p.inbox = nil
	return in
}

func (p *v1Peer) sentCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.inbox)
}

// pump lets the gateway work and handles what it sends until it is quiet.
func (p *v1Peer) pump() {
	for {
		synctest.Wait()
		in := p.take()
		if len(in) == 0 {
			return
		}
		p.received += len(in)
		for _, pk := range in {
			if !p.seen[string(pk.data)] {
				p.seen[string(pk.data)] = true
				p.handle(pk.data)
			}
		}
	}
}

func (p *v1Peer) arm(s v1Step, c v1Chain) { p.armed[s] = c }

// next returns the chain of step s: the armed replacement the first
// time (fuzzed true), the honest chain otherwise.
func (p *v1Peer) next(s v1Step, honest func() v1Chain) (c v1Chain, fuzzed bool) {
	if c, ok := p.armed[s]; ok && !p.used[s] {
		p.used[s] = true
		return c, true
	}
	c = honest()
	p.captured[s] = append(p.captured[s], v1Chain{c.first, bytes.Clone(c.body)})
	return c, false
}

func (p *v1Peer) deliver(pkt []byte) { p.gw.HandlePacket(p.gwAddr, p.addr, pkt) }

func (p *v1Peer) header(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{CookieI: p.ckyI, CookieR: p.ckyR, Exchange: ex, MessageID: mid}
}

// message is a plaintext message around a chain.
func v1Message(h isakmp.Header, c v1Chain) []byte {
	h.NextPayload = c.first
	h.Length = uint32(isakmp.HeaderLen + len(c.body))
	return append(isakmp.AppendHeader(nil, h), c.body...)
}

// ivFor is the IV the gateway uses next for exchange mid, if it took
// our messages (alt false) or if it refused the last fuzzed one (alt
// true; nil when there was none).
func (p *v1Peer) ivFor(mid uint32, alt bool) []byte {
	m := p.ivs
	if alt {
		m = p.alt
	}
	if iv, ok := m[mid]; ok {
		return iv
	}
	if mid == 0 {
		return nil
	}
	p1 := m[0]
	if p1 == nil {
		if !alt {
			return nil
		}
		// Only a later exchange was fuzzed: phase 1 is common.
		p1 = p.ivs[0]
	}
	// An exchange after phase 1 starts with hash(P | M-ID) (RFC 2409
	// Appendix B), the same digest as the first phase 1 IV.
	return p.suite.InitialIV(p1, binary.BigEndian.AppendUint32(nil, mid))
}

// encrypt encrypts a plaintext message of exchange mid and moves our IV
// chain; a fuzzed message keeps the IV before it as the alternative.
func (p *v1Peer) encrypt(plain []byte, mid uint32, fuzzed bool) []byte {
	iv := p.ivFor(mid, false)
	out, next, err := p.keys.Encrypt(plain, iv)
	if err != nil {
		p.t.Fatal(err)
	}
	if fuzzed {
		p.alt[mid] = iv
	} else {
		delete(p.alt, mid)
	}
	p.ivs[mid] = next
	return out
}

// walkV1 calls f for each payload of a chain (type and body, which f may
// change in place) until the chain ends or is malformed.
func walkV1(c v1Chain, f func(typ isakmp.PayloadType, body []byte)) {
	typ, off := c.first, 0
	for typ != isakmp.PayloadNone && off+isakmp.GenericHeaderLen <= len(c.body) {
		n := int(binary.BigEndian.Uint16(c.body[off+2:]))
		if n < isakmp.GenericHeaderLen || off+n > len(c.body) {
			return
		}
		f(typ, c.body[off+isakmp.GenericHeaderLen:off+n])
		typ = isakmp.PayloadType(c.body[off])
		off += n
	}
}

// afterFirstHash is the part of a chain that a quick mode or
// informational HASH covers: everything after its first payload, when
// that is a well-formed HASH payload.
func afterFirstHash(c v1Chain) ([]byte, bool) {
	if c.first != isakmp.PayloadHash || len(c.body) < isakmp.GenericHeaderLen {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(c.body[2:]))
	end := chainEnd(c)
	if n < isakmp.GenericHeaderLen || n > end {
		return nil, false
	}
	return c.body[n:end], true
}

// chainEnd is the length of a chain's payloads without what trails the
// last one (padding, for the receiver), or the whole body when the chain
// is malformed.
func chainEnd(c v1Chain) int {
	typ, off := c.first, 0
	for typ != isakmp.PayloadNone {
		if off+isakmp.GenericHeaderLen > len(c.body) {
			return len(c.body)
		}
		n := int(binary.BigEndian.Uint16(c.body[off+2:]))
		if n < isakmp.GenericHeaderLen || off+n > len(c.body) {
			return len(c.body)
		}
		typ = isakmp.PayloadType(c.body[off])
		off += n
	}
	return off
}

// fixup fills in the placeholders of a chain we send at step s in
// exchange mid (see v1Peer), on a copy.
func (p *v1Peer) fixup(s v1Step, mid uint32, c v1Chain) v1Chain {
	c.body = bytes.Clone(c.body)
	if p.keys == nil {
		return c
	}
	hs := p.suite.HashSize()
	var idBody []byte
	walkV1(c, func(typ isakmp.PayloadType, body []byte) {
		if typ == isakmp.PayloadID && idBody == nil {
			idBody = body
		}
	})
	cookies := isakmp.CookieSPI(p.ckyI, p.ckyR)
	firstHash := true
	walkV1(c, func(typ isakmp.PayloadType, body []byte) {
		switch typ {
		case isakmp.PayloadN:
			// DOI, protocol, SPI size 16, type, SPI.
			if len(body) >= 24 && isakmp.ProtocolID(body[4]) == isakmp.ProtoISAKMP && body[5] == 16 && bytes.Equal(body[8:24], cookieZero) {
				copy(body[8:], cookies)
			}
		case isakmp.PayloadD:
			// DOI, protocol, SPI size 16, count, SPIs.
			if len(body) >= 24 && isakmp.ProtocolID(body[4]) == isakmp.ProtoISAKMP && body[5] == 16 && bytes.Equal(body[8:24], cookieZero) {
				copy(body[8:], cookies)
			}
		}
	})
	walkV1(c, func(typ isakmp.PayloadType, body []byte) {
		if typ != isakmp.PayloadHash || !firstHash {
			return
		}
		firstHash = false
		if len(body) != hs || !allZero(body) {
			return
		}
		switch s {
		case v1StepMM5:
			if idBody != nil {
				copy(body, p.keys.HashI(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, idBody))
			}
		case v1StepMM6:
			if idBody != nil {
				copy(body, p.keys.HashR(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, idBody))
			}
		case v1StepAM3:
			copy(body, p.keys.HashI(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, p.idiB))
		case v1StepQM3:
			if q := p.qm[mid]; q != nil {
				copy(body, p.keys.QuickHash3(mid, q.ni, q.nr))
			}
		case v1StepQM1, v1StepQM2, v1StepInfo:
			rest, ok := afterFirstHash(c)
			if !ok {
				return
			}
			switch s {
			case v1StepQM1:
				copy(body, p.keys.QuickHash1(mid, rest))
			case v1StepQM2:
				if q := p.qm[mid]; q != nil {
					copy(body, p.keys.QuickHash2(mid, q.ni, rest))
				}
			default:
				copy(body, p.keys.InformationalHash(mid, rest))
			}
		}
	})
	return c
}

// authentic reports whether a chain we send at step s in exchange mid
// carries the hash that authenticates it: for main mode one ID and one
// HASH_I (HASH_R) over it, otherwise a first HASH payload with the
// exchange's hash over the payloads after it.
func (p *v1Peer) authentic(s v1Step, mid uint32, c v1Chain) bool {
	if p.keys == nil {
		return false
	}
	if s == v1StepAM3 {
		var hashes [][]byte
		walkV1(c, func(typ isakmp.PayloadType, body []byte) {
			if typ == isakmp.PayloadHash {
				hashes = append(hashes, body)
			}
		})
		return len(hashes) == 1 && keymat.Equal(p.keys.HashI(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, p.idiB), hashes[0])
	}
	if s == v1StepMM5 || s == v1StepMM6 {
		var ids, hashes [][]byte
		walkV1(c, func(typ isakmp.PayloadType, body []byte) {
			switch typ {
			case isakmp.PayloadID:
				ids = append(ids, body)
			case isakmp.PayloadHash:
				hashes = append(hashes, body)
			}
		})
		if len(ids) != 1 || len(hashes) != 1 {
			return false
		}
		want := p.keys.HashI(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, ids[0])
		if s == v1StepMM6 {
			want = p.keys.HashR(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, ids[0])
		}
		return keymat.Equal(want, hashes[0])
	}
	rest, ok := afterFirstHash(c)
	if !ok {
		return false
	}
	var want []byte
	q := p.qm[mid]
	switch {
	case s == v1StepQM1:
		want = p.keys.QuickHash1(mid, rest)
	case s == v1StepQM2 && q != nil:
		want = p.keys.QuickHash2(mid, q.ni, rest)
	case s == v1StepQM3 && q != nil:
		want = p.keys.QuickHash3(mid, q.ni, q.nr)
	case s == v1StepInfo:
		want = p.keys.InformationalHash(mid, rest)
	default:
		return false
	}
	n := int(binary.BigEndian.Uint16(c.body[2:]))
	return keymat.Equal(want, c.body[isakmp.GenericHeaderLen:n])
}

// sendPhase1 sends our main mode message of step s (the chain fixed up,
// encrypted from message 5 on).
func (p *v1Peer) sendPhase1(s v1Step, honest func() v1Chain) {
	c, fuzzed := p.next(s, honest)
	c = p.fixup(s, 0, c)
	if fuzzed && p.onFuzzed != nil {
		p.onFuzzed(s, 0, c)
	}
	ex := isakmp.ExchangeIdentityProtection
	if p.aggressive {
		ex = isakmp.ExchangeAggressive
	}
	msg := v1Message(p.header(ex, 0), c)
	switch s {
	case v1StepMM5, v1StepMM6, v1StepAM3:
		msg = p.encrypt(msg, 0, fuzzed)
	case v1StepMM1, v1StepAM1:
		// What our HASH_I and the gateway's HASH_R cover.
		m, _, err := isakmp.ParseMessage(msg)
		if err == nil {
			if sa := m.Find(isakmp.PayloadSA); len(sa) > 0 {
				p.saIBody = bytes.Clone(sa[0].Body)
				p.offered, _, _ = isakmp.ParseSA(sa[0].Body)
			}
			if id := m.Find(isakmp.PayloadID); len(id) > 0 {
				p.idiB = bytes.Clone(id[0].Body)
			}
		}
	}
	p.round = map[v1Step]int{v1StepMM1: 1, v1StepMM2: 2, v1StepMM3: 3, v1StepMM4: 4, v1StepMM5: 5, v1StepMM6: 6, v1StepAM1: 1, v1StepAM3: 3}[s]
	p.deliver(msg)
}

// sendProtected sends an encrypted message of exchange ex with ID mid at
// step s (quick mode or informational) and returns the chain as sent.
func (p *v1Peer) sendProtected(ex isakmp.ExchangeType, mid uint32, s v1Step, honest func() v1Chain) v1Chain {
	c, fuzzed := p.next(s, honest)
	c = p.fixup(s, mid, c)
	if fuzzed && p.onFuzzed != nil {
		p.onFuzzed(s, mid, c)
	}
	p.deliver(p.encrypt(v1Message(p.header(ex, mid), c), mid, fuzzed))
	return c
}

// startMainMode starts the ISAKMP SA as its initiator.
func (p *v1Peer) startMainMode() {
	p.initiator, p.ckyI, p.ckyR = true, v1PeerCookie, 0
	p.sendPhase1(v1StepMM1, p.honestMM1)
}

// startAggressiveMode starts the ISAKMP SA in aggressive mode as its
// initiator.
func (p *v1Peer) startAggressiveMode() {
	p.initiator, p.aggressive, p.ckyI, p.ckyR = true, true, v1PeerCookie, 0
	p.sendPhase1(v1StepAM1, p.honestAM1)
}

// startQuickMode starts a quick mode of ours on the established SA: the
// first creates the IPsec SA, a later one rekeys it (the same
// selectors).
func (p *v1Peer) startQuickMode() uint32 {
	q := &v1Quick{ours: true}
	mid := v1QuickMID + p.quickModes
	p.qm[mid] = q
	c := p.sendProtected(isakmp.ExchangeQuickMode, mid, v1StepQM1, p.honestQM1)
	p.quickModes++
	// The gateway's HASH(2) and HASH(3) take the nonce as we sent it.
	walkV1(c, func(typ isakmp.PayloadType, body []byte) {
		switch {
		case typ == isakmp.PayloadNonce && q.ni == nil:
			q.ni = bytes.Clone(body)
		}
	})
	return mid
}

// sendInformational sends an informational message of ours.
func (p *v1Peer) sendInformational(honest func() v1Chain) {
	p.sendProtected(isakmp.ExchangeInformational, v1InfoMID, v1StepInfo, honest)
}

// handle takes one datagram of the gateway.
func (p *v1Peer) handle(pkt []byte) {
	m, _, err := isakmp.ParseMessage(bytes.Clone(pkt))
	if err == nil {
		err = isakmp.Validate(&m)
	}
	if err != nil {
		p.t.Errorf("the gateway sent a malformed message: %v", err)
		return
	}
	h := m.Header
	if h.CookieI != p.ckyI && !(p.ckyI == 0 && h.CookieR == 0) {
		return // another ISAKMP SA (reauthentication): not ours to follow
	}
	if h.Encrypted() {
		var ok bool
		if m, ok = p.open(pkt); !ok {
			return
		}
	}
	switch h.Exchange {
	case isakmp.ExchangeIdentityProtection:
		p.phase1(&m)
	case isakmp.ExchangeAggressive:
		if p.aggressive && p.round == 1 && !h.Encrypted() {
			p.aggressive2(&m)
		}
	case isakmp.ExchangeQuickMode:
		p.quick(&m)
	case isakmp.ExchangeInformational:
		if h.Encrypted() {
			p.got = append(p.got, v1Got{h.Exchange, h.MessageID, m.Payloads})
			p.informational(&m)
		}
	}
}

// open decrypts a message of the gateway with the IV of its exchange,
// or the one from before our last fuzzed message, and checks that it
// verifies. With trusted keys anything else is a failure of the gateway.
func (p *v1Peer) open(pkt []byte) (isakmp.Message, bool) {
	mid := binary.BigEndian.Uint32(pkt[20:])
	if p.keys != nil {
		for _, alt := range []bool{false, true} {
			iv := p.ivFor(mid, alt)
			if iv == nil {
				continue
			}
			m, _, err := isakmp.ParseMessage(bytes.Clone(pkt))
			if err != nil {
				continue
			}
			next, err := p.keys.Decrypt(&m, iv)
			if err != nil || isakmp.Validate(&m) != nil || !p.verifies(&m) {
				continue
			}
			if _, own := p.alt[mid]; alt && !own && mid != 0 {
				// A new exchange of the gateway keyed from the phase 1
				// IV from before our fuzzed main mode message: the
				// gateway refused that message.
				if a, ok := p.alt[0]; ok {
					p.ivs[0] = a
					delete(p.alt, 0)
				}
			}
			delete(p.alt, mid)
			p.ivs[mid] = next
			return m, true
		}
	}
	if p.trusted {
		p.t.Errorf("the gateway's %s message %08x does not decrypt and verify with the SA's keys", isakmp.ExchangeType(pkt[18]), mid)
	}
	return isakmp.Message{}, false
}

// verifies checks the HASH of a decrypted message of the gateway.
func (p *v1Peer) verifies(m *isakmp.Message) bool {
	mid := m.Header.MessageID
	if m.Header.Exchange == isakmp.ExchangeIdentityProtection {
		ids, hs := m.Find(isakmp.PayloadID), m.Find(isakmp.PayloadHash)
		if len(ids) != 1 || len(hs) != 1 {
			return false
		}
		var want []byte
		if p.initiator {
			want = p.keys.HashR(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, ids[0].Body)
		} else {
			want = p.keys.HashI(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, ids[0].Body)
		}
		return keymat.Equal(want, hs[0].Body)
	}
	h, ok := m.First(isakmp.PayloadHash)
	if !ok {
		return false
	}
	rest, err := m.AfterHash()
	if err != nil {
		return false
	}
	wants := [][]byte{p.keys.InformationalHash(mid, rest)} // also quick mode 4 (CONNECTED)
	if m.Header.Exchange == isakmp.ExchangeQuickMode {
		wants = append(wants, p.keys.QuickHash1(mid, rest))
		if q := p.qm[mid]; q != nil {
			wants = append(wants, p.keys.QuickHash2(mid, q.ni, rest), p.keys.QuickHash3(mid, q.ni, q.nr))
		}
	}
	return slices.ContainsFunc(wants, func(w []byte) bool { return keymat.Equal(w, h.Body) })
}

// phase1 handles a main mode message of the gateway.
func (p *v1Peer) phase1(m *isakmp.Message) {
	if p.initiator {
		switch {
		case p.round == 1 && !m.Encrypted():
			if !p.acceptAnswer(m) {
				return
			}
			p.sendPhase1(v1StepMM3, p.honestMM3)
		case p.round == 3 && !m.Encrypted():
			if !p.keyFrom(m, false) {
				return
			}
			p.sendPhase1(v1StepMM5, p.honestMM5)
		case p.round == 5 && m.Encrypted():
			p.round = 6
			p.phase1Done = true
			if p.continueQuick {
				p.startQuickMode()
			}
		}
		return
	}
	switch {
	case m.Header.CookieR == 0 && !m.Encrypted() && p.round == 0:
		p.ckyI, p.ckyR = m.Header.CookieI, v1PeerCookie
		sa := m.Find(isakmp.PayloadSA)
		if len(sa) != 1 {
			return
		}
		p.saIBody = bytes.Clone(sa[0].Body)
		p.offered, _, _ = isakmp.ParseSA(sa[0].Body)
		p.sendPhase1(v1StepMM2, p.honestMM2)
	case p.round == 2 && !m.Encrypted():
		if !p.keyFrom(m, true) {
			return
		}
		p.sendPhase1(v1StepMM4, p.honestMM4)
		// The gateway keys the SA as we do if it takes our answer.
		if !p.used[v1StepMM4] && !p.used[v1StepMM2] {
			p.trusted = p.keys != nil
		} else {
			p.trusted = false
		}
	case p.round == 4 && m.Encrypted():
		p.sendPhase1(v1StepMM6, p.honestMM6)
		p.phase1Done = true
	}
}

// aggressive2 takes the gateway's aggressive mode 2 (its choice, key
// exchange, ID and HASH_R, which must verify once the keys are trusted)
// and sends message 3.
func (p *v1Peer) aggressive2(m *isakmp.Message) {
	if !p.acceptAnswer(m) || !p.keyFrom(m, false) {
		return
	}
	ids, hs := m.Find(isakmp.PayloadID), m.Find(isakmp.PayloadHash)
	if len(ids) != 1 || len(hs) != 1 || !keymat.Equal(p.keys.HashR(p.gxi, p.gxr, p.ckyI, p.ckyR, p.saIBody, ids[0].Body), hs[0].Body) {
		if p.trusted {
			p.t.Errorf("the gateway's aggressive mode 2 does not carry a HASH_R that verifies")
		}
		return
	}
	p.sendPhase1(v1StepAM3, p.honestAM3)
	p.phase1Done = true
	if p.continueQuick {
		p.startQuickMode()
	}
}

// acceptAnswer takes the gateway's main mode 2: the transform it chose
// from our offer, its cookie.
func (p *v1Peer) acceptAnswer(m *isakmp.Message) bool {
	sa := m.Find(isakmp.PayloadSA)
	if len(sa) != 1 || m.Header.CookieR == 0 {
		return false
	}
	answer, _, err := isakmp.ParseSA(sa[0].Body)
	if err != nil {
		return false
	}
	got, err := isakmp.Phase1Answer(p.offered, answer)
	if err != nil {
		return false
	}
	p.ckyR = m.Header.CookieR
	return p.setSuite(got.Proposal)
}

func (p *v1Peer) setSuite(pr shared.Proposal) bool {
	encr, prf, ke := pr.Of(transform.TypeENCR), pr.Of(transform.TypePRF), pr.Of(transform.TypeKE)
	if len(encr) != 1 || len(prf) != 1 || len(ke) != 1 || ke[0].ID != transform.KECurve25519 {
		return false
	}
	s, err := keymat.NewSuite(encr[0], prf[0].ID)
	if err != nil {
		return false
	}
	p.suite = s
	return true
}

// keyFrom derives the keys from the gateway's main mode 3 (we respond)
// or 4 (we initiate) and what we sent.
func (p *v1Peer) keyFrom(m *isakmp.Message, responder bool) bool {
	ke, n := m.Find(isakmp.PayloadKE), m.Find(isakmp.PayloadNonce)
	if len(ke) != 1 || len(n) != 1 || p.suite.HashSize() == 0 {
		return false
	}
	gwKE, gwNonce := bytes.Clone(ke[0].Body), bytes.Clone(n[0].Body)
	if responder {
		p.gxi, p.ni, p.gxr, p.nr = gwKE, gwNonce, peerPub, v1Nonce
	} else {
		p.gxr, p.nr = gwKE, gwNonce
	}
	gxy, err := peerShared(gwKE)
	if err != nil {
		return false
	}
	keys, err := keymat.DerivePSK(p.suite, peerPSK, p.ni, p.nr, gxy, p.ckyI, p.ckyR)
	if err != nil {
		return false
	}
	p.keys = keys
	p.ivs = map[uint32][]byte{0: p.suite.InitialIV(p.gxi, p.gxr)}
	p.alt = map[uint32][]byte{}
	if !responder {
		// Our messages 1 and 3 (aggressive mode 1) were honest, or
		// the gateway would not have answered them with keys.
		p.trusted = !p.used[v1StepMM1] && !p.used[v1StepMM3] && !p.used[v1StepAM1]
	}
	return true
}

// quick handles a quick mode message of the gateway.
func (p *v1Peer) quick(m *isakmp.Message) {
	mid := m.Header.MessageID
	p.got = append(p.got, v1Got{m.Header.Exchange, mid, m.Payloads})
	q := p.qm[mid]
	switch {
	case q == nil:
		// The gateway's quick mode 1.
		n := m.Find(isakmp.PayloadNonce)
		if len(n) != 1 {
			return
		}
		q = &v1Quick{ni: bytes.Clone(n[0].Body)}
		p.qm[mid] = q
		c := p.sendProtected(isakmp.ExchangeQuickMode, mid, v1StepQM2, func() v1Chain { return p.honestQM2(m) })
		walkV1(c, func(typ isakmp.PayloadType, body []byte) {
			if typ == isakmp.PayloadNonce && q.nr == nil {
				q.nr = bytes.Clone(body)
			}
		})
	case q.ours && q.nr == nil:
		// Its answer, quick mode 2.
		n := m.Find(isakmp.PayloadNonce)
		if len(n) != 1 {
			return
		}
		q.nr = bytes.Clone(n[0].Body)
		p.sendProtected(isakmp.ExchangeQuickMode, mid, v1StepQM3, p.honestQM3)
		q.done = true
	case !q.ours && !q.done:
		q.done = true // the gateway's quick mode 3
	}
}

// informational answers the gateway's R-U-THERE.
func (p *v1Peer) informational(m *isakmp.Message) {
	for _, x := range m.Find(isakmp.PayloadN) {
		n, _, err := isakmp.ParseNotify(x.Body)
		if err != nil || n.Type != isakmp.R_U_THERE {
			continue
		}
		if seq, ok := n.DPDSequence(); ok {
			mid := binary.BigEndian.Uint32(m.Raw[20:]) ^ 0xa5a5a5a5
			plain, err := isakmp.AppendHashedMessage(nil, p.header(isakmp.ExchangeInformational, mid), p.suite.HashSize(),
				func(rest []byte) []byte { return p.keys.InformationalHash(mid, rest) }, isakmp.DPD(true, p.ckyI, p.ckyR, seq))
			if err != nil {
				p.t.Fatal(err)
			}
			p.deliver(p.encrypt(plain, mid, false))
		}
	}
}

// The honest messages, built the way ipsecgw builds its own.

func (p *v1Peer) hashPlaceholder() isakmp.Hash {
	n := 32
	if p.keys != nil {
		n = p.suite.HashSize()
	}
	return isakmp.Hash{Data: make([]byte, n)}
}

func v1PeerID() isakmp.ID {
	id, err := isakmp.IDFromIdentity(config.Identity{Type: config.IDIPv4, Addr: addrA})
	if err != nil {
		panic(err)
	}
	return id
}

func (p *v1Peer) honestMM1() v1Chain {
	sa, err := isakmp.Phase1SA(p.ikeConf, isakmp.AuthPSK, isakmp.Lifetime{Seconds: 28800})
	if err != nil {
		p.t.Fatal(err)
	}
	return v1ChainOf(sa, isakmp.VendorID{Data: []byte(isakmp.VendorDPD)})
}

func (p *v1Peer) honestMM2() v1Chain {
	offers, _, _ := isakmp.Phase1Offers(p.offered)
	sel, ok := shared.Select(p.ikeOff, isakmp.Proposals1(offers), shared.ProtoIKE, false, 0)
	if !ok {
		return v1ChainOf(isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: isakmp.NO_PROPOSAL_CHOSEN})
	}
	chosen := offers[sel.Number-1]
	answer, err := p.offered.Answer(chosen.ProposalNumber, chosen.TransformNumber, nil)
	if err != nil || !p.setSuite(chosen.Proposal) {
		return v1ChainOf(isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: isakmp.NO_PROPOSAL_CHOSEN})
	}
	return v1ChainOf(answer, isakmp.VendorID{Data: []byte(isakmp.VendorDPD)})
}

func (p *v1Peer) honestMM3() v1Chain {
	p.gxi, p.ni = peerPub, v1Nonce
	return v1ChainOf(isakmp.KE{Data: peerPub}, isakmp.Nonce{Data: v1Nonce})
}

// honestAM1 is aggressive mode 1: our proposals (one group), KE, nonce
// and ID.
func (p *v1Peer) honestAM1() v1Chain {
	sa, err := isakmp.Phase1SA(p.ikeConf, isakmp.AuthPSK, isakmp.Lifetime{Seconds: 28800})
	if err != nil {
		p.t.Fatal(err)
	}
	p.gxi, p.ni = peerPub, v1Nonce
	return v1ChainOf(sa, isakmp.KE{Data: peerPub}, isakmp.Nonce{Data: v1Nonce}, v1PeerID(), isakmp.VendorID{Data: []byte(isakmp.VendorDPD)})
}

func (p *v1Peer) honestAM3() v1Chain {
	return v1ChainOf(p.hashPlaceholder(), isakmp.InitialContact(0, 0))
}

func (p *v1Peer) honestMM4() v1Chain {
	return v1ChainOf(isakmp.KE{Data: peerPub}, isakmp.Nonce{Data: v1Nonce})
}

func (p *v1Peer) honestMM5() v1Chain {
	return v1ChainOf(v1PeerID(), p.hashPlaceholder(), isakmp.InitialContact(0, 0))
}

func (p *v1Peer) honestMM6() v1Chain { return v1ChainOf(v1PeerID(), p.hashPlaceholder()) }

func mustIDFromTS(ts spd.TS) isakmp.ID {
	id, err := isakmp.IDFromTS(ts)
	if err != nil {
		panic(err)
	}
	return id
}

func (p *v1Peer) honestQM1() v1Chain {
	sa, pfs, err := isakmp.Phase2SA(p.espConf, v1PeerSPI+p.quickModes, isakmp.EncapModeFor(true, false, isakmp.NATTNone), isakmp.Lifetime{Seconds: 3600})
	if err != nil {
		p.t.Fatal(err)
	}
	ps := []isakmp.Payload{p.hashPlaceholder(), sa, isakmp.Nonce{Data: v1QuickNonce}}
	if pfs != transform.KENone {
		ps = append(ps, isakmp.KE{Data: peerPub})
	}
	ps = append(ps, mustIDFromTS(spd.PrefixTS(peerNet)), mustIDFromTS(spd.PrefixTS(gwNet)))
	return v1ChainOf(ps...)
}

// honestQM2 answers the gateway's quick mode 1: the transform we pick
// with our SPI, nonce and KE, and its selectors as they came.
func (p *v1Peer) honestQM2(m *isakmp.Message) v1Chain {
	refuse := func(n isakmp.NotifyType) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, Type: n})
	}
	sas := m.Find(isakmp.PayloadSA)
	if len(sas) != 1 {
		return refuse(isakmp.PAYLOAD_MALFORMED)
	}
	offered, _, err := isakmp.ParseSA(sas[0].Body)
	if err != nil {
		return refuse(isakmp.PAYLOAD_MALFORMED)
	}
	offers, _, _ := isakmp.Phase2Offers(offered)
	sel, ok := shared.Select(p.espOff, isakmp.Proposals2(offers), shared.ProtoESP, false, 0)
	if !ok {
		return refuse(isakmp.NO_PROPOSAL_CHOSEN)
	}
	chosen := offers[sel.Number-1]
	answer, err := offered.Answer(chosen.ProposalNumber, chosen.TransformNumber, spi4(v1PeerSPI))
	if err != nil {
		return refuse(isakmp.NO_PROPOSAL_CHOSEN)
	}
	ps := []isakmp.Payload{p.hashPlaceholder(), answer, isakmp.Nonce{Data: v1QuickNonce}}
	if sel.KE.ID != transform.KENone {
		ps = append(ps, isakmp.KE{Data: peerPub})
	}
	for _, id := range m.Find(isakmp.PayloadID) {
		ps = append(ps, id)
	}
	return v1ChainOf(ps...)
}

func (p *v1Peer) honestQM3() v1Chain { return v1ChainOf(p.hashPlaceholder()) }

// v1InfoRequests are the informational messages of the seeds.
var v1InfoRequests = []struct {
	name string
	c    func(p *v1Peer) v1Chain
}{
	{"DPD", func(p *v1Peer) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.DPD(false, 0, 0, 7))
	}},
	{"delete IPsec SA", func(p *v1Peer) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.DeleteESP(v1PeerSPI))
	}},
	{"delete ISAKMP SA", func(p *v1Peer) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.DeleteISAKMP(0, 0))
	}},
	{"INVALID-SPI", func(p *v1Peer) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, Type: isakmp.INVALID_SPI, SPI: spi4(0x12345678)})
	}},
	{"INITIAL-CONTACT", func(p *v1Peer) v1Chain {
		return v1ChainOf(p.hashPlaceholder(), isakmp.InitialContact(0, 0))
	}},
}
