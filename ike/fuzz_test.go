package ike

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/transform"
)

// FuzzResponder feeds arbitrary datagrams to a responder Manager, seeded
// with genuine IKE_SA_INIT requests (two key exchange groups, with and
// without a COOKIE) and an IKE_AUTH-shaped message: whatever arrives,
// nothing panics and Close ends every loop (synctest fails the run if a
// goroutine is left behind).
//
//	go test -run XXX -fuzz FuzzResponder -fuzztime 30s ./ike
func FuzzResponder(f *testing.F) {
	_, cb := confPair("net", "", "ike=aes128-sha256-ecp256,aes256gcm16-prfsha384-x25519")
	dir := f.TempDir()
	cfg := loadConfigIn(f, dir, cb, secrets, addrB)
	ps, _, err := config.ParseProposals(config.ProtoIKE, "aes128-sha256-ecp256,aes256gcm16-prfsha384-x25519")
	if err != nil {
		f.Fatal(err)
	}
	offer := wireOffer(ps)
	from, to := netip.AddrPortFrom(addrA, 500), netip.AddrPortFrom(addrB, 500)
	for _, g := range []transform.ID{transform.KEECP256, transform.KECurve25519} {
		ke, err := transform.NewKeyExchange(g)
		if err != nil {
			f.Fatal(err)
		}
		h := message.Header{SPIi: 0x0102030405060708, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}
		body := []message.Payload{
			message.SA{Proposals: offer},
			message.KE{Group: g, Data: ke.PublicKey()},
			message.Nonce{Data: testNonce()},
			message.Notify{Type: message.NAT_DETECTION_SOURCE_IP, Data: natHashOf(h.SPIi, from)},
			message.Notify{Type: message.NAT_DETECTION_DESTINATION_IP, Data: natHashOf(h.SPIi, to)},
			message.Notify{Type: message.IKEV2_FRAGMENTATION_SUPPORTED},
		}
		f.Add(message.AppendMessage(nil, h, body...))
		f.Add(message.AppendMessage(nil, h, append([]message.Payload{message.Notify{Type: message.COOKIE, Data: make([]byte, 4+32)}}, body...)...))
		ke.Close()
	}
	f.Add(message.AppendMessage(nil, message.Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: message.IKE_AUTH, Flags: message.FlagInitiator, MessageID: 1},
		message.RawPayload{Type: message.PayloadSK, Body: make([]byte, 64)}))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzInput(t)
		synctest.Test(t, func(t *testing.T) {
			m, err := NewManager(Options{Config: cfg, Send: func(netip.AddrPort, netip.AddrPort, []byte) error { return nil },
				Installer: newFakeInstaller(0), Clock: newFakeClock(), LocalAddrs: []netip.Addr{addrB}, Logger: discardLogger})
			if err != nil {
				t.Fatal(err)
			}
			m.HandlePacket(to, from, pkt)
			m.HandlePacket(netip.AddrPortFrom(addrB, 4500), netip.AddrPortFrom(addrA, 4500), pkt)
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			m.Close(ctx)
		})
	})
}

// FuzzV1Responder is FuzzResponder for IKEv1: arbitrary datagrams to a
// responder whose conns allow main and aggressive mode, seeded with
// genuine first messages of both modes (with and without NAT-T), a
// quick-mode-shaped encrypted message and a clear informational. Whatever
// arrives, nothing panics and Close ends every loop.
//
//	go test -run XXX -fuzz FuzzV1Responder -fuzztime 30s ./ike
func FuzzV1Responder(f *testing.F) {
	_, cb := confPairV1("net", "", "aggressive=yes\nike=aes128-sha1-modp2048,3des-md5-modp1024")
	dir := f.TempDir()
	cfg := loadConfigIn(f, dir, cb, secrets, addrB)
	ps, _, err := config.ParseProposals(config.ProtoIKE, "aes128-sha1-modp2048,3des-md5-modp1024")
	if err != nil {
		f.Fatal(err)
	}
	saI, err := isakmp.Phase1SA(ps, isakmp.AuthPSK, isakmp.Lifetime{Seconds: 28800})
	if err != nil {
		f.Fatal(err)
	}
	vids := []isakmp.Payload{isakmp.VendorID{Data: []byte(isakmp.VendorDPD)}}
	for _, v := range isakmp.NATTVendorIDs() {
		vids = append(vids, v)
	}
	h := isakmp.Header{CookieI: 0x0102030405060708, Exchange: isakmp.ExchangeIdentityProtection}
	f.Add(isakmp.AppendMessage(nil, h, saI))
	f.Add(isakmp.AppendMessage(nil, h, append([]isakmp.Payload{saI}, vids...)...))
	ke, err := transform.NewKeyExchange(transform.KEMODP2048)
	if err != nil {
		f.Fatal(err)
	}
	id, _ := isakmp.IDFromIdentity(config.Identity{Type: config.IDIPv4, Addr: addrA})
	h.Exchange = isakmp.ExchangeAggressive
	f.Add(isakmp.AppendMessage(nil, h, append([]isakmp.Payload{saI, isakmp.KE{Data: ke.PublicKey()}, isakmp.Nonce{Data: testNonce()}, id}, vids...)...))
	ke.Close()
	f.Add(isakmp.AppendMessage(nil, isakmp.Header{CookieI: 1, CookieR: 2, Exchange: isakmp.ExchangeQuickMode, Flags: isakmp.FlagEncryption, MessageID: 7},
		isakmp.RawPayload{Type: isakmp.PayloadHash, Body: make([]byte, 60)}))
	f.Add(isakmp.AppendMessage(nil, isakmp.Header{CookieI: 1, Exchange: isakmp.ExchangeInformational, MessageID: 9},
		isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: isakmp.NO_PROPOSAL_CHOSEN}))
	from, to := netip.AddrPortFrom(addrA, 500), netip.AddrPortFrom(addrB, 500)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		fuzzInput(t)
		synctest.Test(t, func(t *testing.T) {
			m, err := NewManager(Options{Config: cfg, Send: func(netip.AddrPort, netip.AddrPort, []byte) error { return nil },
				Installer: newFakeInstaller(0), Clock: newFakeClock(), LocalAddrs: []netip.Addr{addrB}, Logger: discardLogger})
			if err != nil {
				t.Fatal(err)
			}
			m.HandlePacket(to, from, pkt)
			m.HandlePacket(netip.AddrPortFrom(addrB, 4500), netip.AddrPortFrom(addrA, 4500), pkt)
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			m.Close(ctx)
		})
	})
}
