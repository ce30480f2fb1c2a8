package interop

import (
	"context"
	be "encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/internal/pinger"
	"github.com/ipsecgw/ipsecgw/transform"
)

// The hostile campaign's length: per attack, one iperf3 run of
// 2·IPSECGW_HOSTILE_SECONDS·IPSECGW_HOSTILE_ROUNDS seconds in which the
// attacker, sending IPSECGW_HOSTILE_RATE packets a second, is off and on
// in alternate slots of hostileSlot (see runHostile). CI uses the defaults
// (2 s, 2,000 packets/s, 2 rounds: 8 s per attack, both tests about
// 150 s each); `make hostile` runs the longer campaign
// (IPSECGW_HOSTILE_SECONDS=10, IPSECGW_HOSTILE_RATE=5000,
// IPSECGW_HOSTILE_ROUNDS=3: 60 s per attack, 30 of them attacked).
func hostileSetting(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// hostileAttack is one kind of hostile traffic: gen sends one packet; the
// drops it should cause are counted under reasons, in IKE's counters
// (ikeDrops) or the dataplane's.
type hostileAttack struct {
	name, what string
	ikeDrops   bool
	reasons    []string
	gen        func(rng *rand.Rand) error
}

// hostileRow is one line of the campaign's table.
type hostileRow struct {
	attack, what              string
	sent                      int64
	counted                   string
	expected, queueDrops      uint64
	before, during            float64 // bits/s
	pingsSent, pingsLost      int
	pingsLostBefore           int
	hwmKiB, rssKiB            int
	logLines, plaintext       int64
	alive, stillUp            bool
	ikeSPIBefore, ikeSPIAfter string
	// cpuOff and cpuOn: CPU time of ipsecgw [0] and strongSwan [1] in
	// the slotsOff slots without the attack and the slotsOn with it.
	cpuOff, cpuOn     [2]time.Duration
	slotsOff, slotsOn int
	// bitsOff and bitsOn: what iperf3 carried in those slots.
	bitsOff, bitsOn float64
}

// cpuPerPacket is how much more CPU time side i (0: ipsecgw, 1:
// strongSwan) used in the attacked slots than the tunnel traffic they
// carried explains, per packet the attacker sent. Both sides' CPU time
// follows the tunnel's throughput, which the shared machine moves, so the
// slots without the attack give the CPU time per bit, and what the
// attacked slots used beyond their bits at that rate is the attack's.
func (r hostileRow) cpuPerPacket(i int) time.Duration {
	if r.sent == 0 || r.bitsOff == 0 {
		return 0
	}
	extra := float64(r.cpuOn[i]) - float64(r.cpuOff[i])*r.bitsOn/r.bitsOff
	return time.Duration(extra / float64(r.sent))
}

// TestHostileTraffic runs a campaign of hostile traffic against ipsecgw
// while its IKEv2 tunnel to strongSwan carries iperf3 and a 50 pps ping:
// from an attacker namespace of its own (a second link into gw1, any
// source address), malformed IKE of both versions, unknown critical
// payloads, truncated and forged SK payloads, bogus fragments, wrong SPIs,
// messages out of window, a replayed IKE request (retransmission storm),
// IKE_SA_INIT floods from 250 spoofed sources, and replayed, truncated,
// forged and unknown-SPI ESP (sent as if from strongSwan's address). For
// each attack: the daemon stays alive, the tunnel stays up (the same IKE
// SA), the drops are counted under their reasons in `ipsecgw stats
// --json`, the log grows by a bounded number of lines, peak RSS stays
// bounded, traffic still flows, and a wiretap on gw1's underlay sees no
// packet of the protected subnets in clear. Throughput with the attack
// against without it (interleaved slots of one iperf3 run) and the pings
// lost are reported, not judged: CI's short run has too few slots for a
// verdict, and on the loaded 2-core machine other jobs move them.
func TestHostileTraffic(t *testing.T) { hostileCampaign(t, 2) }

// TestHostileTrafficIKEv1 is the campaign against an IKEv1 tunnel: ISAKMP
// garbage, forged encrypted quick mode and informational messages on the
// live ISAKMP SA, strongSwan's DPD R-U-THERE replayed, and the ESP attacks.
func TestHostileTrafficIKEv1(t *testing.T) { hostileCampaign(t, 1) }

func hostileCampaign(t *testing.T, version int) {
	secs := hostileSetting("IPSECGW_HOSTILE_SECONDS", 2)
	rate := hostileSetting("IPSECGW_HOSTILE_RATE", 2000)
	rounds := hostileSetting("IPSECGW_HOSTILE_ROUNDS", 2)
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+time.Duration(20*secs*4*rounds)*time.Second)
	defer cancel()
	atk, err := l.AddAttacker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.Version, c2.Version = version, version
	// strongSwan checks liveness every 2 s while idle: a genuine request
	// for the retransmission storm to replay.
	c2.ConnExtra = "dpd_delay = 2s"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	// A responder conn of each version open to anyone, so that requests
	// for new SAs from the attacker's spoofed sources are acceptable.
	road := "\nconn road\n  keyexchange=ikev2\n  authby=secret\n  left=" + l.GW1.Addr.String() +
		"\n  leftsubnet=" + l.GW1.LAN.String() + "\n  right=%any\n  rightsubnet=10.99.0.0/24\n  ike=aes128-sha256-modp2048!\n  esp=aes128gcm16!\n  auto=add\n"
	road1 := "\nconn road1\n  keyexchange=ikev1\n  authby=secret\n  left=" + l.GW1.Addr.String() +
		"\n  leftsubnet=" + l.GW1.LAN.String() + "\n  right=%any\n  rightsubnet=10.98.0.0/24\n  auto=add\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf() + road + road1, Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	// The live SA's SPIs (IKEv1: cookies), as any observer of the
	// underlay sees them.
	ikeSPIi, ikeSPIr := parseHexSPI(t, st.IKE.InitiatorSPI), parseHexSPI(t, st.IKE.ResponderSPI)

	// The wiretap on gw1's underlay: plaintext of the protected subnets,
	// strongSwan's ESP (for replays) and its last IKE request.
	w := &wiretap{}
	tap, err := l.GW1.StartTap(lab.IfUnderlay, w.packet)
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Stop()
	// An idle moment: strongSwan's DPD sends a request.
	waitFor(ctx, t, 10*time.Second, "a DPD request from strongSwan", func() bool { return w.ikeRequest() != nil })
	pingBothWays(ctx, t, l, 3)
	waitFor(ctx, t, 2*time.Second, "ESP from strongSwan on the underlay", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.espRing) > 0
	})

	raw, err := atk.RawSender()
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	gw1IKE := netip.AddrPortFrom(l.GW1.PublicAddr, 500)
	// Attacks on the live SA and its ESP take the path strongSwan's
	// packets take: UDP 4500 with the non-ESP marker once IKE floated, ESP
	// in UDP when the SA encapsulates.
	ikePort, espEncap := w.paths()
	t.Logf("strongSwan's IKE arrives on port %d; its ESP in UDP: %v", ikePort, espEncap)
	peerIKE := netip.AddrPortFrom(l.GW2.PublicAddr, ikePort)
	gw1Live := netip.AddrPortFrom(l.GW1.PublicAddr, ikePort)
	sendLive := func(pkt []byte) error {
		if ikePort == 4500 {
			pkt = append([]byte{0, 0, 0, 0}, pkt...)
		}
		return raw.UDP(peerIKE, gw1Live, pkt)
	}
	sendESP := func(pkt []byte) error {
		if espEncap {
			return raw.UDP(netip.AddrPortFrom(l.GW2.PublicAddr, 4500), netip.AddrPortFrom(l.GW1.PublicAddr, 4500), pkt)
		}
		return raw.IP(l.GW2.PublicAddr, l.GW1.PublicAddr, 50, pkt)
	}
	spoofed := func(rng *rand.Rand) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(2 + rng.IntN(250))}), uint16(1024+rng.IntN(60000)))
	}
	random := func(rng *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	initReq := ikeSAInitRequest()
	// Attacks that need no live SA, and those on its ESP: both versions.
	common := []hostileAttack{
		{"ike-garbage", "random bytes (1–400) to UDP 500 from spoofed sources", true, []string{"malformed", "unknown_spi"},
			func(rng *rand.Rand) error { return raw.UDP(spoofed(rng), gw1IKE, random(rng, 1+rng.IntN(400))) }},
		{"ike-unknown-spi", "IKEv2 INFORMATIONAL requests with random SPIs from spoofed sources", true, []string{"unknown_spi"},
			func(rng *rand.Rand) error {
				h := message.Header{SPIi: rng.Uint64(), SPIr: rng.Uint64() | 1, MajorVersion: 2, Exchange: message.INFORMATIONAL, MessageID: rng.Uint32N(4)}
				return raw.UDP(spoofed(rng), gw1IKE, message.AppendMessage(nil, h, message.RawPayload{Type: message.PayloadSK, Body: random(rng, 80)}))
			}},
		{"ikev1-garbage", "ISAKMP (v1) headers with random cookies, and main mode 1 with garbage payloads, from spoofed sources", true, []string{"malformed", "unknown_spi", "half_open_limit"},
			func(rng *rand.Rand) error {
				body := random(rng, 28+rng.IntN(300))
				first := rng.IntN(2) == 0
				be.BigEndian.PutUint64(body[0:], rng.Uint64()|1)
				if first {
					be.BigEndian.PutUint64(body[8:], 0)
				}
				body[16], body[17], body[18], body[19] = 1, 0x10, 2, 0 // SA first, version 1.0, main mode, no flags
				if first {
					be.BigEndian.PutUint32(body[20:], 0)
				}
				be.BigEndian.PutUint32(body[24:], uint32(len(body)))
				return raw.UDP(spoofed(rng), gw1IKE, body)
			}},
		{"ike-init-flood", "valid IKE_SA_INIT requests (modp2048) from 250 spoofed sources", true, []string{"cookie_required", "half_open_limit"},
			func(rng *rand.Rand) error {
				be.BigEndian.PutUint64(initReq[0:], rng.Uint64()|1)
				return raw.UDP(spoofed(rng), gw1IKE, initReq)
			}},
		{"esp-unknown-spi", "ESP with random SPIs, as from strongSwan's address", false, []string{"no_sa"},
			func(rng *rand.Rand) error {
				b := random(rng, 100+rng.IntN(300))
				be.BigEndian.PutUint32(b, 0x100+rng.Uint32N(0xf0000000))
				return sendESP(b)
			}},
		{"esp-replay", "strongSwan's ESP packets, captured on the underlay, replayed", false, []string{"replay"},
			func(rng *rand.Rand) error { return sendESP(w.esp(rng)) }},
		{"esp-truncated", "captured ESP packets cut short (8 bytes to one less than their length)", false, []string{"malformed", "auth_failed", "replay"},
			func(rng *rand.Rand) error {
				p := w.esp(rng)
				return sendESP(p[:8+rng.IntN(len(p)-8)])
			}},
		{"esp-forged", "ESP on the live SPI with sequence numbers ahead and forged contents", false, []string{"auth_failed"},
			func(rng *rand.Rand) error {
				p := w.esp(rng)
				b := append(p[:8:8], random(rng, len(p)-8)...)
				be.BigEndian.PutUint32(b[4:], be.BigEndian.Uint32(p[4:])+1000+rng.Uint32N(1<<20))
				return sendESP(b)
			}},
	}
	// Attacks on the live IKEv2 SA, as strongSwan (the responder) would
	// send its messages.
	onSA := func(flags uint8, mid uint32, p message.RawPayload) []byte {
		return message.AppendMessage(nil, message.Header{SPIi: ikeSPIi, SPIr: ikeSPIr, MajorVersion: 2, Exchange: message.INFORMATIONAL, Flags: flags, MessageID: mid}, p)
	}
	// liveMID is a message ID in the live SA's request window as ipsecgw
	// sees it: that of strongSwan's last request captured on the underlay
	// (a retransmission, integrity-checked before the cache answers it)
	// or the next one (decrypted and checked). Fixed IDs fall behind the
	// window once strongSwan's DPD has used them, and are then dropped
	// for their ID before any integrity check.
	liveMID := func(rng *rand.Rand) uint32 {
		if req := w.ikeRequest(); len(req) >= 28 {
			return be.BigEndian.Uint32(req[20:]) + rng.Uint32N(2)
		}
		return rng.Uint32N(4)
	}
	v2 := []hostileAttack{
		{"ike-bad-length", "IKEv2 headers of the live SA whose length field is too short or too long", true, []string{"malformed"},
			func(rng *rand.Rand) error {
				pkt := onSA(0, 0, message.RawPayload{Type: message.PayloadSK, Body: random(rng, 64)})
				be.BigEndian.PutUint32(pkt[24:], uint32([]int{0, 27, len(pkt) + 1 + rng.IntN(1000)}[rng.IntN(3)]))
				return sendLive(pkt)
			}},
		{"ike-critical", "IKE_SA_INIT requests with an unknown payload marked critical, from spoofed sources", true, []string{"unsupported_critical"},
			func(rng *rand.Rand) error {
				h := message.Header{SPIi: rng.Uint64() | 1, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}
				return raw.UDP(spoofed(rng), gw1IKE, message.AppendMessage(nil, h, message.RawPayload{Type: message.PayloadType(100 + rng.IntN(100)), Critical: true, Body: random(rng, 16)}))
			}},
		{"ike-forged-sk", "requests on the live SA (the message ID of strongSwan's last request or the next) with a forged SK payload", true, []string{"auth_failed", "unexpected_msgid", "retransmission", "retransmission_limited"},
			func(rng *rand.Rand) error {
				return sendLive(onSA(0, liveMID(rng), message.RawPayload{Type: message.PayloadSK, Body: random(rng, 48+rng.IntN(200))}))
			}},
		{"ike-truncated-sk", "requests on the live SA (message IDs as above) with an SK payload of 0–15 bytes", true, []string{"malformed", "unexpected_msgid", "retransmission", "retransmission_limited"},
			func(rng *rand.Rand) error {
				return sendLive(onSA(0, liveMID(rng), message.RawPayload{Type: message.PayloadSK, Body: random(rng, rng.IntN(16))}))
			}},
		{"ike-fragments", "a flood of forged IKE fragments (SKF 1–255 of 255, ~1 KB) on the live SA (message IDs as above)", true, []string{"bad_fragment", "unexpected_msgid", "retransmission", "retransmission_limited", "malformed"},
			func(rng *rand.Rand) error {
				body := random(rng, 900+rng.IntN(200))
				be.BigEndian.PutUint16(body[0:], uint16(1+rng.IntN(255)))
				be.BigEndian.PutUint16(body[2:], 255)
				return sendLive(onSA(0, liveMID(rng), message.RawPayload{Type: message.PayloadSKF, Body: body}))
			}},
		{"ike-out-of-order", "requests and responses on the live SA with message IDs out of the window", true, []string{"unexpected_msgid", "unexpected_response"},
			func(rng *rand.Rand) error {
				flags := uint8(0)
				if rng.IntN(2) == 0 {
					flags = message.FlagResponse
				}
				return sendLive(onSA(flags, 10+rng.Uint32N(1<<20), message.RawPayload{Type: message.PayloadSK, Body: random(rng, 80)}))
			}},
		{"ike-retransmit-storm", "strongSwan's last DPD request, captured on the underlay, replayed", true, []string{"retransmission", "retransmission_limited", "unexpected_msgid"},
			func(rng *rand.Rand) error { return sendLive(w.ikeRequest()) }},
	}
	// Attacks on the live ISAKMP SA: encrypted messages under its cookies
	// (HASH and payloads that cannot verify without the keys), and the
	// peer's DPD replayed.
	v1 := []hostileAttack{
		{"ikev1-forged", "encrypted quick mode and informational messages on the live ISAKMP SA (random message IDs, 16–256 bytes)", true, []string{"auth_failed", "malformed"},
			func(rng *rand.Rand) error {
				body := random(rng, 28+16*(1+rng.IntN(16)))
				be.BigEndian.PutUint64(body[0:], ikeSPIi)
				be.BigEndian.PutUint64(body[8:], ikeSPIr)
				body[16], body[17], body[18], body[19] = 8, 0x10, []byte{32, 5}[rng.IntN(2)], 1 // HASH first, version 1.0, quick mode or informational, encrypted
				be.BigEndian.PutUint32(body[20:], rng.Uint32()|1)
				be.BigEndian.PutUint32(body[24:], uint32(len(body)))
				return sendLive(body)
			}},
		{"ikev1-dpd-replay", "strongSwan's last DPD R-U-THERE, captured on the underlay, replayed", true, []string{"retransmission", "retransmission_limited"},
			func(rng *rand.Rand) error { return sendLive(w.ikeRequest()) }},
	}
	attacks := append(append(common[:3:3], v2...), common[3:]...)
	if version == 1 {
		// In CI the attacks that do not depend on the IKE version run
		// against the IKEv2 tunnel only; `make hostile` runs them here too.
		attacks = append(common[2:3:3], v1...)
		if os.Getenv("IPSECGW_HOSTILE_SECONDS") != "" {
			attacks = append(append(common[:3:3], v1...), common[3:]...)
		}
	}

	// Two controls, with no drops to count (no reasons): the attacker
	// silent in its slots, the method's noise; and the first attack's
	// datagrams sent to a UDP port nobody listens on, which the kernel
	// drops: what the attack traffic itself costs on this 2-core machine,
	// where the attacker, both gateways and iperf3 share the CPUs.
	closedPort := netip.AddrPortFrom(gw1IKE.Addr(), 9)
	attacks = append([]hostileAttack{
		{name: "none (control)", what: "nothing: the attacker stays silent"},
		{name: "closed-port (control)", what: "random bytes (1–400) from spoofed sources to UDP port 9 of the gateway (no listener: the kernel drops them)",
			gen: func(rng *rand.Rand) error { return raw.UDP(spoofed(rng), closedPort, random(rng, 1+rng.IntN(400))) }},
	}, attacks...)
	var rows []hostileRow
	port := 5300
	for _, a := range attacks {
		if ctx.Err() != nil {
			break
		}
		port++
		rows = append(rows, runHostile(ctx, t, l, gw, charon.Proc.PID, w, a, secs, rate, rounds, port))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "hostile campaign against an IKEv%d tunnel to strongSwan: per attack one iperf3 run of %d s, the attacker (%d packets/s) off and on in alternate %v slots; before and during are the medians of iperf3's %v reports inside the slots without and with the attack\n",
		version, max(2*secs*rounds, int(2*hostileSlot/time.Second)), rate, hostileSlot, hostileReport)
	fmt.Fprintln(&b, "| attack | what was sent | packets | what ipsecgw counted | iperf3 without → with (ratio) | CPU µs per attack packet: ipsecgw / strongSwan | peak RSS | pings lost with (without) | log lines | plaintext seen |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		cpu := "–"
		if r.sent > 0 {
			cpu = fmt.Sprintf("%.1f / %.1f", float64(r.cpuPerPacket(0))/1e3, float64(r.cpuPerPacket(1))/1e3)
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %.0f → %.0f Mbit/s (%.2f) | %s | %.1f MiB | %d/%d (%d) | %d | %d |\n", r.attack, r.what, r.sent, r.counted,
			r.before/1e6, r.during/1e6, r.during/max(r.before, 1), cpu, float64(r.hwmKiB)/1024, r.pingsLost, r.pingsSent, r.pingsLostBefore, r.logLines, r.plaintext)
	}
	t.Log("\n" + b.String())
	if f := os.Getenv("IPSECGW_HOSTILE_TABLE"); f != "" {
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	pingBothWays(ctx, t, l, 3)
	if n := w.plain.Load(); n != 0 {
		t.Errorf("%d packets of the protected subnets crossed the underlay in clear", n)
	}
}

// hostileSlot is how long the attacker is on or off at a time within
// one iperf3 run, and hostileReport how often iperf3 reports its rate.
const (
	hostileSlot   = 2 * time.Second
	hostileReport = 500 * time.Millisecond
)

// runHostile measures one attack. One iperf3 run and a 50 pps ping last
// 2·secs·rounds seconds, in slots of hostileSlot that alternate between
// the attacker off and the attacker sending rate packets a second,
// starting with off. Throughput before and during the attack are the
// medians of iperf3's reports every hostileReport inside the slots
// without and with it; the first and last report of each slot are left
// out, as they may straddle a switch. Interleaving short slots in one
// stream cancels the drift of a loaded machine that made separate 10 s
// runs of the same unattacked tunnel differ by ±25 %. The counters, log
// and memory are read around the whole run.
func runHostile(ctx context.Context, t *testing.T, l *lab.Lab, gw *gateway, peerPID int, w *wiretap, a hostileAttack, secs, rate, rounds, port int) hostileRow {
	t.Helper()
	r := hostileRow{attack: a.name, what: a.what}
	before := gwStats(ctx, t, gw)
	st, _ := gw.status(ctx, "s2s")
	if st.IKE != nil {
		r.ikeSPIBefore = st.IKE.InitiatorSPI
	}
	logBefore := len(gw.Log())
	plainBefore := w.plain.Load()

	length := max(time.Duration(2*secs*rounds)*time.Second, 2*hostileSlot)
	attacking := func(since time.Duration) bool { return (since/hostileSlot)%2 == 1 }
	icmp, err := l.Host1.ListenICMP()
	if err != nil {
		t.Fatal(err)
	}
	defer icmp.Close()
	srv, err := l.Host2.StartIperfServer(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(uint64(port), 7))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if a.gen != nil && attacking(time.Since(start)) {
				for range max(rate/100, 1) {
					if a.gen(rng) == nil {
						sent.Add(1)
					}
				}
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// At each switch the CPU time ipsecgw and strongSwan used in the slot
	// that ends is added to that slot's side.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last [2]time.Duration
		read := func() (now [2]time.Duration) {
			now[0], _ = lab.ProcCPU(gw.Proc.PID)
			now[1], _ = lab.ProcCPU(peerPID)
			return now
		}
		last = read()
		for k := time.Duration(1); ; k++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(k * hostileSlot))):
			}
			now := read()
			side := &r.cpuOff
			if attacking((k - 1) * hostileSlot) {
				side = &r.cpuOn
				r.slotsOn++
			} else {
				r.slotsOff++
			}
			for i := range now {
				side[i] += now[i] - last[i]
			}
			last = now
		}
	}()
	const pingEvery = 20 * time.Millisecond
	var ping pinger.Result
	var pingErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ping, pingErr = pinger.Run(ctx, icmp, pinger.Config{Dst: &net.IPAddr{IP: l.Host2.Addr.AsSlice()},
			Count: int(length / pingEvery), Interval: pingEvery, Size: 200})
	}()
	res, err := l.Host1.IperfEvery(ctx, l.Host2.Addr, port, length, 1, hostileReport)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Errorf("%s: iperf3: %v", a.name, err)
	}
	if pingErr != nil {
		t.Errorf("%s: ping: %v", a.name, pingErr)
	}
	r.sent = sent.Load()
	perSlot := int(hostileSlot / hostileReport)
	befores, durings := splitReports(res.Intervals, perSlot)
	for i, rep := range res.Intervals {
		// Only whole slots: the CPU time is read at the switches.
		if k := i / perSlot; k < r.slotsOff+r.slotsOn {
			bits := rep.BitsPerSecond * (rep.End - rep.Start)
			if k%2 == 1 {
				r.bitsOn += bits
			} else {
				r.bitsOff += bits
			}
		}
	}
	r.before, r.during = median(befores), median(durings)
	for i := range ping.Sent {
		if attacking(time.Duration(i) * pingEvery) {
			r.pingsSent++
		}
	}
	for _, seq := range ping.LostSeqs {
		if attacking(time.Duration(seq) * pingEvery) {
			r.pingsLost++
		} else {
			r.pingsLostBefore++
		}
	}
	// LostSeqs lists the first 100 lost; count the rest against the attack.
	r.pingsLost += ping.Lost - len(ping.LostSeqs)
	// Let the daemon finish what is queued before reading its counters.
	time.Sleep(500 * time.Millisecond)
	after := gwStats(ctx, t, gw)
	logged := gw.Log()[logBefore:]
	r.logLines = int64(strings.Count(logged, "\n"))
	r.plaintext = w.plain.Load() - plainBefore
	r.hwmKiB, r.rssKiB = procMemKiB(gw.Proc.PID)
	select {
	case <-gw.Proc.Done():
	default:
		r.alive = true
	}
	st, err = gw.status(ctx, "s2s")
	r.stillUp = err == nil && st.State == control.StateEstablished && len(st.Children) > 0
	if st.IKE != nil {
		r.ikeSPIAfter = st.IKE.InitiatorSPI
	}

	var counted []string
	drops := func(s control.Stats) map[string]uint64 {
		if a.ikeDrops {
			return s.IKE.Drops
		}
		return s.Dataplane.Drops
	}
	db, da := drops(before), drops(after)
	for _, k := range slices.Sorted(mapsKeys(da)) {
		if d := da[k] - db[k]; d > 0 {
			counted = append(counted, fmt.Sprintf("%s=%d", k, d))
			if slices.Contains(a.reasons, k) {
				r.expected += d
			}
		}
	}
	// Datagrams the sockets could not hand to IKE in time are counted
	// too; the peer (here the attacker) would retransmit them.
	r.queueDrops = after.IKE.IKEQueueDrops - before.IKE.IKEQueueDrops
	if r.queueDrops > 0 {
		counted = append(counted, fmt.Sprintf("ike_queue_drops=%d", r.queueDrops))
	}
	if c := after.IKE.CookiesSent - before.IKE.CookiesSent; a.name == "ike-init-flood" {
		counted = append(counted, fmt.Sprintf("(cookies sent %d, half-open now %d)", c, after.IKE.HalfOpen))
	}
	r.counted = strings.Join(counted, " ")
	t.Logf("%s: sent %d; counted %s; iperf3 %.0f → %.0f Mbit/s (reports without %s, with %s); CPU without/with the attack (%d/%d slots): ipsecgw %v/%v, strongSwan %v/%v; pings lost %d/%d (pinger: %v, %d foreign); VmHWM %d KiB, VmRSS %d KiB; %d log lines (%s); %d plaintext",
		a.name, r.sent, r.counted, r.before/1e6, r.during/1e6, mbits(befores), mbits(durings), r.slotsOff, r.slotsOn, r.cpuOff[0], r.cpuOn[0], r.cpuOff[1], r.cpuOn[1],
		r.pingsLost, r.pingsSent, ping, ping.Foreign, r.hwmKiB, r.rssKiB, r.logLines, logSummary(logged), r.plaintext)

	switch {
	case !r.alive:
		t.Fatalf("%s: ipsecgw exited:\n%s", a.name, tail(gw.Log(), 40))
	case !r.stillUp:
		t.Errorf("%s: the tunnel is no longer established: %+v", a.name, st)
	case r.ikeSPIAfter != r.ikeSPIBefore:
		t.Errorf("%s: the IKE SA changed (%s → %s)", a.name, r.ikeSPIBefore, r.ikeSPIAfter)
	}
	if a.gen != nil {
		if r.sent < int64(rate*secs/4) {
			t.Errorf("%s: the attacker managed only %d packets", a.name, r.sent)
		}
		// Every packet reaches the daemon on the lab's veths unless a socket
		// buffer overflows in the kernel (not the daemon's to count); half is
		// a bound that holds on a loaded machine.
		if len(a.reasons) > 0 && 2*(r.expected+r.queueDrops) < uint64(r.sent) {
			t.Errorf("%s: %d of %d packets counted under %v (+%d queue drops); counted: %s", a.name, r.expected, r.sent, a.reasons, r.queueDrops, r.counted)
		}
	}
	// The drop lines are rate-limited (10 per reason per 10 s); what is
	// left is the daemon's ordinary debug log.
	if limit := int64(100 + 30*secs); r.logLines > limit {
		t.Errorf("%s: %d log lines during the attack (limit %d):\n%s", a.name, r.logLines, limit, tail(gw.Log(), 30))
	}
	if r.hwmKiB > 256<<10 {
		t.Errorf("%s: peak RSS %d KiB", a.name, r.hwmKiB)
	}
	// Throughput with the attack against without it is reported, not
	// judged: on the shared 2-core machine other jobs move both figures
	// by a factor of two and more. What must hold is that the tunnel
	// carried traffic in the attacked slots (any of their reports, the
	// ones at a switch included: a stalled machine can zero a second).
	carried := r.bitsOn > 0
	if !carried {
		t.Errorf("%s: no iperf3 traffic through the tunnel during the attack", a.name)
	}
	return r
}

// logSummary counts the log lines of a stretch of the daemon's log by
// message, most frequent first.
func logSummary(log string) string {
	n := map[string]int{}
	for _, line := range strings.Split(log, "\n") {
		i := strings.Index(line, "msg=")
		if i < 0 {
			continue
		}
		m := line[i+4:]
		if strings.HasPrefix(m, `"`) {
			if j := strings.Index(m[1:], `"`); j >= 0 {
				m = m[1 : j+1]
			}
		} else if j := strings.IndexByte(m, ' '); j >= 0 {
			m = m[:j]
		}
		n[m]++
	}
	keys := slices.Collect(func(yield func(string) bool) {
		for k := range n {
			if !yield(k) {
				return
			}
		}
	})
	slices.SortFunc(keys, func(a, b string) int { return n[b] - n[a] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%dx %q", n[k], k))
	}
	return strings.Join(parts, ", ")
}

func mapsKeys(m map[string]uint64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// gwStats reads `ipsecgw stats --json`.
func gwStats(ctx context.Context, t *testing.T, gw *gateway) control.Stats {
	t.Helper()
	out, err := gw.cli(ctx, "stats", "--json")
	if err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	var s control.Stats
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	return s
}

// procMemKiB reads a process's peak and current resident set size.
func procMemKiB(pid int) (hwm, rss int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmHWM:":
			hwm, _ = strconv.Atoi(f[1])
		case "VmRSS:":
			rss, _ = strconv.Atoi(f[1])
		}
	}
	return hwm, rss
}

func parseHexSPI(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		t.Fatalf("IKE SPI %q: %v", s, err)
	}
	return v
}

func waitFor(ctx context.Context, t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !ok() {
		if time.Now().After(end) || ctx.Err() != nil {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ikeSAInitRequest is a valid IKE_SA_INIT request (aes128-sha256-modp2048)
// whose SPIi the caller sets (bytes 0–7).
func ikeSAInitRequest() []byte {
	ke := make([]byte, 256) // modp2048 public value 2: valid, and free to make
	ke[255] = 2
	tr := func(typ transform.Type, id transform.ID, keyLen uint16) message.Transform {
		return message.Transform{Transform: transform.Transform{Type: typ, ID: id, KeyLen: keyLen}}
	}
	return message.AppendMessage(nil, message.Header{MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator},
		message.SA{Proposals: []message.Proposal{{Number: 1, Protocol: message.ProtoIKE, Transforms: []message.Transform{
			tr(transform.TypeENCR, transform.EncrAESCBC, 128),
			tr(transform.TypePRF, transform.PRFHMACSHA2_256, 0),
			tr(transform.TypeINTEG, transform.IntegHMACSHA2_256_128, 0),
			tr(transform.TypeKE, transform.KEMODP2048, 0),
		}}}},
		message.KE{Group: transform.KEMODP2048, Data: ke},
		message.Nonce{Data: make([]byte, 32)},
	)
}

// wiretap watches gw1's underlay: it counts packets of the protected
// subnets (plaintext: on the underlay only ESP and IKE between the
// gateways belong), and keeps strongSwan's recent ESP packets and its last
// IKE request for the replay attacks.
type wiretap struct {
	plain atomic.Int64

	mu      sync.Mutex
	espRing [][]byte
	espNext int
	ikeReq  []byte
	// ikePort is the port strongSwan's IKE messages use (4500 once it
	// floated, with the non-ESP marker); espEncap is true when its ESP
	// comes in UDP (RFC 3948).
	ikePort  uint16
	espEncap bool
}

func (w *wiretap) packet(p lab.TapPacket) {
	b := p.Data
	if len(b) < 20 || b[0]>>4 != 4 {
		return
	}
	hl := int(b[0]&0xf) * 4
	src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	if lab.LAN1.Contains(src) || lab.LAN1.Contains(dst) || lab.LAN2.Contains(src) || lab.LAN2.Contains(dst) {
		w.plain.Add(1)
	}
	if p.Outgoing || src != lab.GW2Public || len(b) <= hl {
		return
	}
	payload := b[hl:]
	w.mu.Lock()
	defer w.mu.Unlock()
	switch b[9] {
	case 50:
		w.keepESP(payload, false)
	case 17:
		if len(payload) < 8 {
			return
		}
		port, udp := be.BigEndian.Uint16(payload[2:]), payload[8:]
		switch {
		case port == 4500 && len(udp) > 4 && be.BigEndian.Uint32(udp) != 0:
			w.keepESP(udp, true)
		case port == 4500 && len(udp) > 4:
			w.keepIKE(udp[4:], port)
		case port == 500:
			w.keepIKE(udp, port)
		}
	}
}

func (w *wiretap) keepESP(p []byte, encap bool) {
	if len(p) < 16 {
		return
	}
	w.espEncap = encap
	if len(w.espRing) < 256 {
		w.espRing = append(w.espRing, slices.Clone(p))
	} else {
		w.espRing[w.espNext] = slices.Clone(p)
		w.espNext = (w.espNext + 1) % len(w.espRing)
	}
}

func (w *wiretap) keepIKE(ike []byte, port uint16) {
	if len(ike) < 28 {
		return
	}
	w.ikePort = port
	switch ike[17] {
	case 0x20: // IKEv2: an INFORMATIONAL request
		if ike[19]&message.FlagResponse == 0 && message.ExchangeType(ike[18]) == message.INFORMATIONAL {
			w.ikeReq = slices.Clone(ike)
		}
	case 0x10: // IKEv1: an encrypted informational message
		if ike[18] == 5 && ike[19]&1 != 0 {
			w.ikeReq = slices.Clone(ike)
		}
	}
}

// paths returns how strongSwan's IKE and ESP reach gw1.
func (w *wiretap) paths() (ikePort uint16, espEncap bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ikePort, w.espEncap
}

// esp returns one of the captured ESP packets (a copy), failing the
// attack's send when none was captured.
func (w *wiretap) esp(rng *rand.Rand) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.espRing) == 0 {
		return make([]byte, 16)
	}
	return slices.Clone(w.espRing[rng.IntN(len(w.espRing))])
}

func (w *wiretap) ikeRequest() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ikeReq
}

// median is the middle of xs (the mean of the two middle ones for an even
// count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	xs = slices.Sorted(slices.Values(xs))
	if n := len(xs); n%2 == 0 {
		return (xs[n/2-1] + xs[n/2]) / 2
	}
	return xs[len(xs)/2]
}

// splitReports sorts iperf3's periodic reports, perSlot of them to a
// slot, into those of the slots without the attack (even slots) and with
// it (odd). The first and last report of each slot are left out: they may
// straddle a switch, as iperf3's clock starts a few milliseconds after
// the attacker's.
func splitReports(reports []lab.IperfInterval, perSlot int) (off, on []float64) {
	for i, rep := range reports {
		if p := i % perSlot; p == 0 || p == perSlot-1 {
			continue
		}
		if (i/perSlot)%2 == 1 {
			on = append(on, rep.BitsPerSecond)
		} else {
			off = append(off, rep.BitsPerSecond)
		}
	}
	return off, on
}

// mbits prints bit rates in Mbit/s, in the order measured.
func mbits(bps []float64) string {
	parts := make([]string, len(bps))
	for i, v := range bps {
		parts[i] = fmt.Sprintf("%.0f", v/1e6)
	}
	return strings.Join(parts, "/")
}

// TestSplitReports: four reports to a slot, slots alternating without and
// with the attack; only each slot's two middle reports count.
func TestSplitReports(t *testing.T) {
	var reports []lab.IperfInterval
	for i := range 18 { // four and a half slots: the last one is cut short
		reports = append(reports, lab.IperfInterval{Start: float64(i) / 2, End: float64(i+1) / 2, BitsPerSecond: float64(i)})
	}
	off, on := splitReports(reports, 4)
	if want := []float64{1, 2, 9, 10, 17}; !slices.Equal(off, want) {
		t.Errorf("without the attack %v, want %v", off, want)
	}
	if want := []float64{5, 6, 13, 14}; !slices.Equal(on, want) {
		t.Errorf("with the attack %v, want %v", on, want)
	}
}
