package keymat

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// An exchange test runs main mode, quick mode and informational
// exchanges between two peers in memory with this package and package
// isakmp, the way an engine would use them, checking at every step that
// the receiver verifies what the sender built. The same messages feed the
// tshark cross-check.

type suiteCase struct {
	name    string
	ike     string // ike= proposal, one transform
	esp     string // esp= proposal
	extends bool   // SKEYID_e is shorter than the key: Appendix B applies
}

var (
	suiteAES256SHA1 = suiteCase{name: "aes256-sha1-modp2048", ike: "aes256-sha1-modp2048", esp: "aes128gcm16-ecp256", extends: true}
	suite3DESMD5    = suiteCase{name: "3des-md5-modp1024", ike: "3des-md5-modp1024", esp: "aes256-sha1", extends: true}
	suiteAES128SHA2 = suiteCase{name: "aes128-sha256-ecp256", ike: "aes128-sha256-ecp256", esp: "3des-sha256-modp2048"}
)

// packet is one message of an exchange as sent.
type packet struct {
	fromInitiator bool
	data          []byte
	// what the message holds, for the cross-checks
	exchange isakmp.ExchangeType
	payloads []isakmp.PayloadType
	enc      bool
}

type exchange struct {
	s              suiteCase
	ckyI, ckyR     uint64
	initAddr       netip.AddrPort
	respAddr       netip.AddrPort
	keysI, keysR   *Keys
	childI, childR ChildKeys
	spiI, spiR     uint32
	packets        []packet
}

const testPSK = "a pre-shared key for the tests"

// peer is one side's state.
type peer struct {
	t     *testing.T
	keys  *Keys
	chain *IVChain
}

// send encrypts a plaintext message with the chain's IV for its exchange
// and moves the chain.
func (p *peer) send(msg []byte) []byte {
	p.t.Helper()
	mid := binary.BigEndian.Uint32(msg[20:])
	out, next, err := p.keys.Encrypt(msg, p.chain.IV(mid))
	if err != nil {
		p.t.Fatal(err)
	}
	p.chain.Update(mid, next)
	return out
}

// receive parses and validates a message, decrypts it when it is
// encrypted and returns it with the block that moves the chain once the
// caller has verified it.
func (p *peer) receive(b []byte) (*isakmp.Message, []byte) {
	p.t.Helper()
	b = bytes.Clone(b) // decryption works in place; leave the sent bytes alone
	m, _, err := isakmp.ParseMessage(b)
	if err != nil {
		p.t.Fatal(err)
	}
	if err := isakmp.Validate(&m); err != nil {
		p.t.Fatal(err)
	}
	var next []byte
	if m.Encrypted() {
		if next, err = p.keys.Decrypt(&m, p.chain.IV(m.Header.MessageID)); err != nil {
			p.t.Fatal(err)
		}
		if err := isakmp.Validate(&m); err != nil {
			p.t.Fatal(err)
		}
	}
	return &m, next
}

func one(t *testing.T, m *isakmp.Message, typ isakmp.PayloadType) []byte {
	t.Helper()
	ps := m.Find(typ)
	if len(ps) != 1 {
		t.Fatalf("%d %v payloads in %v", len(ps), typ, m.Payloads)
	}
	return ps[0].Body
}

func types(m *isakmp.Message) []isakmp.PayloadType {
	var out []isakmp.PayloadType
	for _, p := range m.Payloads {
		out = append(out, p.Type)
	}
	return out
}

func mustProposals(t *testing.T, proto config.Protocol, s string) []config.Proposal {
	t.Helper()
	ps, _, err := config.ParseProposals(proto, s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// runExchange runs main mode, quick mode (with PFS when the esp proposal
// names a group), DPD and deletes between two peers.
func runExchange(t *testing.T, s suiteCase, ckyI, ckyR uint64) *exchange {
	t.Helper()
	x := &exchange{s: s, ckyI: ckyI, ckyR: ckyR,
		initAddr: netip.MustParseAddrPort("198.51.100.1:500"), respAddr: netip.MustParseAddrPort("203.0.113.2:500"),
		spiI: 0xc1000001, spiR: 0xc2000002}
	record := func(fromI bool, b []byte, m *isakmp.Message) {
		x.packets = append(x.packets, packet{fromInitiator: fromI, data: b, exchange: m.Header.Exchange, payloads: types(m), enc: m.Encrypted()})
	}
	hdr := isakmp.Header{CookieI: ckyI, Exchange: isakmp.ExchangeIdentityProtection}

	// Main mode 1: SA and Vendor IDs.
	saI, err := isakmp.Phase1SA(mustProposals(t, config.ProtoIKE, s.ike), isakmp.AuthPSK, isakmp.Lifetime{Seconds: 28800})
	if err != nil {
		t.Fatal(err)
	}
	mm1 := isakmp.AppendMessage(nil, hdr, saI, isakmp.VendorID{Data: []byte(isakmp.VendorDPD)}, isakmp.VendorID{Data: []byte(isakmp.VendorNATT)})
	rm1, _ := (&peer{t: t}).receive(mm1)
	record(true, mm1, rm1)
	saiB := one(t, rm1, isakmp.PayloadSA) // SAi_b as the responder received it
	sa1, _, err := isakmp.ParseSA(saiB)
	if err != nil {
		t.Fatal(err)
	}
	offers, _, err := isakmp.Phase1Offers(sa1)
	if err != nil {
		t.Fatal(err)
	}
	ours := shared.Offer(mustProposals(t, config.ProtoIKE, s.ike), shared.ProtoIKE, nil, false)
	sel, ok := shared.Select(ours, isakmp.Proposals1(offers), shared.ProtoIKE, false, 0)
	if !ok {
		t.Fatal("responder selected nothing")
	}
	chosen := offers[sel.Number-1]

	// Main mode 2: the answer.
	hdr.CookieR = ckyR
	answer, err := sa1.Answer(chosen.ProposalNumber, chosen.TransformNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	mm2 := isakmp.AppendMessage(nil, hdr, answer, isakmp.VendorID{Data: []byte(isakmp.VendorDPD)}, isakmp.VendorID{Data: []byte(isakmp.VendorNATT)})
	im2, _ := (&peer{t: t}).receive(mm2)
	record(false, mm2, im2)
	sa2, _, err := isakmp.ParseSA(one(t, im2, isakmp.PayloadSA))
	if err != nil {
		t.Fatal(err)
	}
	got, err := isakmp.Phase1Answer(saI, sa2)
	if err != nil {
		t.Fatal(err)
	}
	if isakmp.NATTFromVendorIDs(im2.Find(isakmp.PayloadVID)) != isakmp.NATTRFC3947 {
		t.Fatal("NAT-T not announced")
	}
	encr, prf := got.Proposal.Of(transform.TypeENCR)[0], got.Proposal.Of(transform.TypePRF)[0]
	suite, err := NewSuite(encr, prf.ID)
	if err != nil {
		t.Fatal(err)
	}
	group := got.Proposal.Of(transform.TypeKE)[0].ID

	// Main mode 3 and 4: KE, nonces, NAT-D.
	keI, err := transform.NewKeyExchange(group)
	if err != nil {
		t.Fatal(err)
	}
	keR, err := transform.NewKeyExchange(group)
	if err != nil {
		t.Fatal(err)
	}
	ni, nr := bytes.Repeat([]byte{0x1a}, 20), bytes.Repeat([]byte{0x2b}, 24)
	natd := func(ap netip.AddrPort) isakmp.NATD { return isakmp.NATD{Hash: suite.NATDHash(ckyI, ckyR, ap)} }
	mm3 := isakmp.AppendMessage(nil, hdr, isakmp.KE{Data: keI.PublicKey()}, isakmp.Nonce{Data: ni}, natd(x.respAddr), natd(x.initAddr))
	rm3, _ := (&peer{t: t}).receive(mm3)
	record(true, mm3, rm3)
	// The responder checks NAT-D: the first hash is its own address.
	if nd := rm3.Find(isakmp.PayloadNATD); len(nd) != 2 || !bytes.Equal(nd[0].Body, suite.NATDHash(ckyI, ckyR, x.respAddr)) {
		t.Fatal("NAT-D of the responder's address does not match")
	}
	mm4 := isakmp.AppendMessage(nil, hdr, isakmp.KE{Data: keR.PublicKey()}, isakmp.Nonce{Data: nr}, natd(x.initAddr), natd(x.respAddr))
	im4, _ := (&peer{t: t}).receive(mm4)
	record(false, mm4, im4)

	gxi, gxr := one(t, rm3, isakmp.PayloadKE), one(t, im4, isakmp.PayloadKE)
	secretI, err := keI.SharedSecret(gxr)
	if err != nil {
		t.Fatal(err)
	}
	secretR, err := keR.SharedSecret(gxi)
	if err != nil {
		t.Fatal(err)
	}
	if x.keysI, err = DerivePSK(suite, []byte(testPSK), ni, one(t, im4, isakmp.PayloadNonce), secretI, ckyI, ckyR); err != nil {
		t.Fatal(err)
	}
	if x.keysR, err = DerivePSK(suite, []byte(testPSK), one(t, rm3, isakmp.PayloadNonce), nr, secretR, ckyI, ckyR); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(x.keysI.all, x.keysR.all) {
		t.Fatal("the peers derived different keys")
	}
	pi := &peer{t: t, keys: x.keysI, chain: suite.NewIVChain(gxi, gxr, 0)}
	pr := &peer{t: t, keys: x.keysR, chain: suite.NewIVChain(gxi, gxr, 0)}

	// Main mode 5: IDii, HASH_I, INITIAL-CONTACT, encrypted.
	idi, _ := isakmp.IDFromIdentity(config.Identity{Type: config.IDFQDN, Value: "initiator.example"})
	idiiB := idi.AppendTo(nil)
	hdr.Flags = isakmp.FlagEncryption
	mm5 := pi.send(isakmp.AppendMessage(nil, hdr, idi, isakmp.Hash{Data: x.keysI.HashI(keI.PublicKey(), gxr, ckyI, ckyR, saI.AppendTo(nil), idiiB)},
		isakmp.InitialContact(ckyI, ckyR)))
	rm5, next := pr.receive(mm5)
	record(true, mm5, rm5)
	if !Equal(x.keysR.HashI(gxi, keR.PublicKey(), ckyI, ckyR, saiB, one(t, rm5, isakmp.PayloadID)), one(t, rm5, isakmp.PayloadHash)) {
		t.Fatal("HASH_I does not verify")
	}
	pr.chain.Update(0, next)

	// Main mode 6: IDir, HASH_R.
	idr, _ := isakmp.IDFromIdentity(config.Identity{Type: config.IDIPv4, Addr: x.respAddr.Addr()})
	mm6 := pr.send(isakmp.AppendMessage(nil, hdr, idr, isakmp.Hash{Data: x.keysR.HashR(gxi, keR.PublicKey(), ckyI, ckyR, saiB, idr.AppendTo(nil))}))
	im6, next := pi.receive(mm6)
	record(false, mm6, im6)
	if !Equal(x.keysI.HashR(keI.PublicKey(), gxr, ckyI, ckyR, saI.AppendTo(nil), one(t, im6, isakmp.PayloadID)), one(t, im6, isakmp.PayloadHash)) {
		t.Fatal("HASH_R does not verify")
	}
	pi.chain.Update(0, next)
	if !bytes.Equal(pi.chain.IV(0), pr.chain.IV(0)) || !bytes.Equal(pi.chain.IV(0), mm6[len(mm6)-suite.BlockSize():]) {
		t.Fatal("phase 1 IV is not the last block of main mode 6 on both sides")
	}

	// Quick mode 1: HASH(1), SA, Ni, [KE], IDci, IDcr.
	const qmID = 0x5eed0001
	espPs := mustProposals(t, config.ProtoESP, s.esp)
	sa3, pfs, err := isakmp.Phase2SA(espPs, x.spiI, isakmp.EncapTunnel, isakmp.Lifetime{Seconds: 3600})
	if err != nil {
		t.Fatal(err)
	}
	var qkeI, qkeR transform.KeyExchange
	qni, qnr := bytes.Repeat([]byte{0x3c}, 32), bytes.Repeat([]byte{0x4d}, 16)
	idci, _ := isakmp.IDFromTS(spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/16")))
	idcr, _ := isakmp.IDFromTS(spd.TS{Range: spd.AddrRange{From: netip.MustParseAddr("10.2.0.5"), To: netip.MustParseAddr("10.2.0.9")},
		Protocol: 6, Ports: spd.Port(443)})
	qm1Payloads := []isakmp.Payload{sa3, isakmp.Nonce{Data: qni}}
	if pfs != transform.KENone {
		if qkeI, err = transform.NewKeyExchange(pfs); err != nil {
			t.Fatal(err)
		}
		qm1Payloads = append(qm1Payloads, isakmp.KE{Data: qkeI.PublicKey()})
	}
	qm1Payloads = append(qm1Payloads, idci, idcr)
	qh := isakmp.Header{CookieI: ckyI, CookieR: ckyR, Exchange: isakmp.ExchangeQuickMode, Flags: isakmp.FlagEncryption, MessageID: qmID}
	plain, err := isakmp.AppendHashedMessage(nil, qh, suite.HashSize(), func(rest []byte) []byte { return x.keysI.QuickHash1(qmID, rest) }, qm1Payloads...)
	if err != nil {
		t.Fatal(err)
	}
	qm1 := pi.send(plain)
	rq1, next := pr.receive(qm1)
	record(true, qm1, rq1)
	rest, err := rq1.AfterHash()
	if err != nil || !Equal(x.keysR.QuickHash1(qmID, rest), one(t, rq1, isakmp.PayloadHash)) {
		t.Fatalf("HASH(1) does not verify: %v", err)
	}
	pr.chain.Update(qmID, next)
	rsa3, _, err := isakmp.ParseSA(one(t, rq1, isakmp.PayloadSA))
	if err != nil {
		t.Fatal(err)
	}
	qoffers, _, err := isakmp.Phase2Offers(rsa3)
	if err != nil {
		t.Fatal(err)
	}
	qsel, ok := shared.Select(shared.Offer(espPs, shared.ProtoESP, nil, false), isakmp.Proposals2(qoffers), shared.ProtoESP, false, pfs)
	if !ok {
		t.Fatal("no quick mode proposal selected")
	}
	qo := qoffers[qsel.Number-1]
	var spiRB [4]byte
	binary.BigEndian.PutUint32(spiRB[:], x.spiR)
	qanswer, err := rsa3.Answer(qo.ProposalNumber, qo.TransformNumber, spiRB[:])
	if err != nil {
		t.Fatal(err)
	}
	var gqmR []byte
	qm2Payloads := []isakmp.Payload{qanswer, isakmp.Nonce{Data: qnr}}
	if pfs != transform.KENone {
		if qkeR, err = transform.NewKeyExchange(pfs); err != nil {
			t.Fatal(err)
		}
		if gqmR, err = qkeR.SharedSecret(one(t, rq1, isakmp.PayloadKE)); err != nil {
			t.Fatal(err)
		}
		qm2Payloads = append(qm2Payloads, isakmp.KE{Data: qkeR.PublicKey()})
	}
	for _, id := range rq1.Find(isakmp.PayloadID) {
		qm2Payloads = append(qm2Payloads, id)
	}
	rni := one(t, rq1, isakmp.PayloadNonce)
	plain, err = isakmp.AppendHashedMessage(nil, qh, suite.HashSize(), func(rest []byte) []byte { return x.keysR.QuickHash2(qmID, rni, rest) }, qm2Payloads...)
	if err != nil {
		t.Fatal(err)
	}
	qm2 := pr.send(plain)
	iq2, next := pi.receive(qm2)
	record(false, qm2, iq2)
	rest, _ = iq2.AfterHash()
	if !Equal(x.keysI.QuickHash2(qmID, qni, rest), one(t, iq2, isakmp.PayloadHash)) {
		t.Fatal("HASH(2) does not verify")
	}
	pi.chain.Update(qmID, next)
	isa4, _, err := isakmp.ParseSA(one(t, iq2, isakmp.PayloadSA))
	if err != nil {
		t.Fatal(err)
	}
	qgot, err := isakmp.Phase2Answer(sa3, isa4)
	if err != nil {
		t.Fatal(err)
	}
	var gqmI []byte
	if pfs != transform.KENone {
		if gqmI, err = qkeI.SharedSecret(one(t, iq2, isakmp.PayloadKE)); err != nil {
			t.Fatal(err)
		}
	}
	inr := one(t, iq2, isakmp.PayloadNonce)

	// Quick mode 3: HASH(3) alone.
	qm3 := pi.send(isakmp.AppendMessage(nil, qh, isakmp.Hash{Data: x.keysI.QuickHash3(qmID, qni, inr)}))
	rq3, next := pr.receive(qm3)
	record(true, qm3, rq3)
	if !Equal(x.keysR.QuickHash3(qmID, rni, qnr), one(t, rq3, isakmp.PayloadHash)) {
		t.Fatal("HASH(3) does not verify")
	}
	pr.chain.Update(qmID, next)
	pi.chain.Forget(qmID)
	pr.chain.Forget(qmID)

	// Both sides derive the same IPsec SA keys.
	ctr := func(p shared.Proposal, typ transform.Type) transform.Transform {
		if l := p.Of(typ); len(l) > 0 {
			return l[0]
		}
		return transform.Transform{Type: typ}
	}
	spiIgot := binary.BigEndian.Uint32(rsa3.Proposals[0].SPI)
	spiRgot := binary.BigEndian.Uint32(qgot.Proposal.SPI)
	if spiIgot != x.spiI || spiRgot != x.spiR {
		t.Fatalf("SPIs %x %x", spiIgot, spiRgot)
	}
	if x.childI, err = x.keysI.ChildKeys(uint8(isakmp.ProtoESP), ctr(qgot.Proposal, transform.TypeENCR), ctr(qgot.Proposal, transform.TypeINTEG),
		x.spiI, spiRgot, gqmI, qni, inr); err != nil {
		t.Fatal(err)
	}
	if x.childR, err = x.keysR.ChildKeys(uint8(isakmp.ProtoESP), ctr(qo.Proposal, transform.TypeENCR), ctr(qo.Proposal, transform.TypeINTEG),
		spiIgot, x.spiR, gqmR, rni, qnr); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(x.childI.all, x.childR.all) {
		t.Fatal("the peers derived different IPsec SA keys")
	}

	// Informational: DPD both ways, then deletes, each with a fresh M-ID.
	info := func(from *peer, fromI bool, mid uint32, n isakmp.Payload) {
		ih := isakmp.Header{CookieI: ckyI, CookieR: ckyR, Exchange: isakmp.ExchangeInformational, Flags: isakmp.FlagEncryption, MessageID: mid}
		plain, err := isakmp.AppendHashedMessage(nil, ih, suite.HashSize(), func(rest []byte) []byte { return from.keys.InformationalHash(mid, rest) }, n)
		if err != nil {
			t.Fatal(err)
		}
		b := from.send(plain)
		to := pr
		if !fromI {
			to = pi
		}
		m, _ := to.receive(b)
		record(fromI, b, m)
		rest, _ := m.AfterHash()
		if !Equal(to.keys.InformationalHash(mid, rest), one(t, m, isakmp.PayloadHash)) {
			t.Fatal("informational HASH does not verify")
		}
	}
	info(pr, false, 0x1000a, isakmp.DPD(false, ckyI, ckyR, 1))
	info(pi, true, 0x1000b, isakmp.DPD(true, ckyI, ckyR, 1))
	info(pi, true, 0x1000c, isakmp.DeleteESP(x.spiI))
	info(pi, true, 0x1000d, isakmp.DeleteISAKMP(ckyI, ckyR))
	return x
}

func TestExchanges(t *testing.T) {
	for _, s := range []suiteCase{suiteAES256SHA1, suite3DESMD5, suiteAES128SHA2} {
		t.Run(s.name, func(t *testing.T) {
			x := runExchange(t, s, 0x0011223344556677, 0x8899aabbccddeeff)
			if len(x.packets) != 13 {
				t.Fatalf("%d packets", len(x.packets))
			}
			if got := len(x.keysI.SKEYIDe) < x.keysI.KeyLen(); got != s.extends {
				t.Errorf("key extension %v, want %v", got, s.extends)
			}
			x.keysI.Zero()
			x.childI.Zero()
			if x.keysI.SKEYID != nil || x.childI.EncrI != nil {
				t.Error("Zero left key slices")
			}
		})
	}
}
