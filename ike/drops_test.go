package ike

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// TestDropCounters sends an established responder each kind of message an
// attacker without the keys can make (or replay) and checks that each is
// counted under its reason, once, and that the SA survives them all.
func TestDropCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		if err := a.m.Up("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st := status(b, "net")
		if st.State != StateEstablished {
			t.Fatalf("B: %s (%s)", st.State, st.Reason)
		}
		spiI, spiR := st.SPIi, st.SPIr
		local, from := netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 500)
		// A (the original initiator) sent message IDs 0 and 1; B expects 2.
		fromA := func(flags uint8, ex message.ExchangeType, mid uint32, p message.RawPayload) []byte {
			h := message.Header{SPIi: spiI, SPIr: spiR, MajorVersion: 2, Exchange: ex, Flags: flags, MessageID: mid}
			return message.AppendMessage(nil, h, p)
		}
		sk := func(typ message.PayloadType, n int) message.RawPayload {
			return message.RawPayload{Type: typ, Body: bytes.Repeat([]byte{0x5a}, n)}
		}
		skf := sk(message.PayloadSKF, 80)
		skf.Body[1], skf.Body[3] = 1, 2 // fragment 1 of 2
		init := message.AppendMessage(nil, message.Header{SPIi: 0x1122334455667788, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator},
			message.RawPayload{Type: 120, Critical: true, Body: []byte{1}})
		// A's IKE_AUTH request as it went out: a genuine retransmission.
		var authReq []byte
		for _, p := range net.packets() {
			if h, _, err := message.ParseHeader(p.data); err == nil && p.from.Addr() == addrA && h.Exchange == message.IKE_AUTH && !h.IsResponse() {
				authReq = p.data
			}
		}
		if authReq == nil {
			t.Fatal("no IKE_AUTH request from A on the wire")
		}
		v1 := isakmp.AppendMessage(nil, isakmp.Header{CookieI: 7, CookieR: 9, Exchange: isakmp.ExchangeQuickMode, MessageID: 5})
		cases := []struct {
			name string
			pkt  []byte
			want shared.DropReason
		}{
			{"garbage", []byte("not an IKE message at all"), shared.DropMalformed},
			{"unknown SPI", message.AppendMessage(nil, message.Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: message.INFORMATIONAL, Flags: message.FlagInitiator, MessageID: 2}), shared.DropUnknownSPI},
			{"unknown ISAKMP cookies", v1, shared.DropUnknownSPI},
			{"unknown critical payload", init, shared.DropUnsupportedCritical},
			{"forged SK", fromA(message.FlagInitiator, message.INFORMATIONAL, 2, sk(message.PayloadSK, 80)), shared.DropAuthFailed},
			{"truncated SK", fromA(message.FlagInitiator, message.INFORMATIONAL, 2, sk(message.PayloadSK, 3)), shared.DropMalformed},
			{"forged fragment", fromA(message.FlagInitiator, message.INFORMATIONAL, 2, skf), shared.DropBadFragment},
			{"message ID out of window", fromA(message.FlagInitiator, message.INFORMATIONAL, 9, sk(message.PayloadSK, 80)), shared.DropUnexpectedMsgID},
			{"response to nothing", fromA(message.FlagInitiator|message.FlagResponse, message.INFORMATIONAL, 4, sk(message.PayloadSK, 80)), shared.DropUnexpectedResponse},
			// A forged copy of the last request is not answered from the
			// cache: it fails the integrity check.
			{"forged repeated request", fromA(message.FlagInitiator, message.IKE_AUTH, 1, sk(message.PayloadSK, 80)), shared.DropAuthFailed},
			{"repeated request", authReq, shared.DropRetransmission},
			// Another copy at once is not answered: it came within
			// shared.AnswerGap of the last answer.
			{"repeated request within the answer gap", authReq, shared.DropRetransmitLimited},
		}
		// The original IKE_AUTH response is older than the answer gap.
		clk.advance(shared.AnswerGap, synctest.Wait)
		for _, tc := range cases {
			before := b.m.Counters().Drops
			b.m.HandlePacket(local, from, tc.pkt)
			synctest.Wait()
			after := b.m.Counters().Drops
			for r := range after {
				want := before[r]
				if shared.DropReason(r) == tc.want {
					want++
				}
				if after[r] != want {
					t.Errorf("%s: %s counted %d, want %d", tc.name, shared.DropReason(r).Label(), after[r]-before[r], want-before[r])
				}
			}
		}
		if st := status(b, "net"); st.State != StateEstablished || st.SPIi != spiI {
			t.Errorf("B after the attack: %s, IKE SA %x (was %x)", st.State, st.SPIi, spiI)
		}
		// The cached IKE_AUTH response B sent again (for the genuine
		// retransmission only) reached A, which had nothing outstanding.
		if n := a.m.Counters().Drops[shared.DropUnexpectedResponse]; n != 1 {
			t.Errorf("A counted %d unexpected responses, want 1 (B's answer from its cache)", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestDropLogRateLimited: a flood of dropped messages is counted in full
// but logged only DropLogLines times per window, the next window's first
// line saying how many were left out.
func TestDropLogRateLimited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d := shared.NewDrops(nil)
		const n = 1000
		for range n {
			d.Drop(log, shared.DropUnknownSPI, "message for unknown IKE SA dropped", "spi", "0000000000000001")
		}
		if got := d.Get(shared.DropUnknownSPI); got != n {
			t.Errorf("counted %d, want %d", got, n)
		}
		if lines := strings.Count(buf.String(), "\n"); lines != shared.DropLogLines {
			t.Errorf("%d log lines for %d drops, want %d", lines, n, shared.DropLogLines)
		}
		// Another reason has a budget of its own.
		d.Drop(log, shared.DropAuthFailed, "request dropped")
		if !strings.Contains(buf.String(), "drop=auth_failed") {
			t.Errorf("auth_failed not logged:\n%s", buf.String())
		}
		buf.Reset()
		time.Sleep(shared.DropLogWindow)
		d.Drop(log, shared.DropUnknownSPI, "message for unknown IKE SA dropped")
		want := "suppressed=" + strconv.Itoa(n-shared.DropLogLines)
		if !strings.Contains(buf.String(), want) {
			t.Errorf("first line of the next window lacks %q:\n%s", want, buf.String())
		}
	})
}

// TestDropCountAllocs: counting a drop allocates nothing (it runs for every
// message of a flood).
func TestDropCountAllocs(t *testing.T) {
	d := shared.NewDrops(nil)
	if n := testing.AllocsPerRun(1000, func() { d.Count(shared.DropMalformed) }); n != 0 {
		t.Errorf("Count allocates %.1f times", n)
	}
	log := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)) // info: debug lines are off
	if n := testing.AllocsPerRun(1000, func() { d.Drop(log, shared.DropMalformed, "dropped") }); n != 0 {
		t.Errorf("Drop without debug logging allocates %.1f times", n)
	}
}

// TestDropLabels: every reason has a distinct label (they are JSON keys and
// metric label values).
func TestDropLabels(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range shared.DropReasons() {
		l := r.Label()
		if l == "unknown" || seen[l] {
			t.Errorf("reason %d: label %q", r, l)
		}
		seen[l] = true
	}
	if len(seen) != int(shared.NumDropReasons)-1 {
		t.Errorf("%d labels for %d reasons", len(seen), shared.NumDropReasons-1)
	}
}

// TestV1ReplayedInformational: a protected informational message of the
// peer (here its DPD R-U-THERE) replayed by someone on the path verifies,
// but is dropped as a replay: not answered with another R-U-THERE-ACK and
// not taken for a sign of life.
func TestV1ReplayedInformational(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "dpdaction=clear\ndpddelay=10s\ndpdtimeout=30s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		clk.advance(15*time.Second, synctest.Wait)
		var probe packet
		for _, p := range net.packets() {
			if p.from.Addr() == addrA && p.data[18] == exInfo {
				probe = p
			}
		}
		if probe.data == nil {
			t.Fatal("A sent no R-U-THERE")
		}
		acks := countEx(net.packets(), addrB, exInfo)
		if acks == 0 {
			t.Fatal("B did not answer the R-U-THERE")
		}
		for range 3 {
			b.m.HandlePacket(probe.to, probe.from, slices.Clone(probe.data))
		}
		synctest.Wait()
		if n := b.m.Counters().Drops[shared.DropRetransmission]; n != 3 {
			t.Errorf("B counted %d replays, want 3", n)
		}
		if n := countEx(net.packets(), addrB, exInfo); n != acks {
			t.Errorf("B answered the replays: %d informational messages, %d before", n, acks)
		}
		// Fresh probes are still answered.
		clk.advance(30*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished || countEx(net.packets(), addrB, exInfo) <= acks {
			t.Errorf("after the replays: A %s (%s), B sent %d informational messages (%d before)", s.State, s.Reason, countEx(net.packets(), addrB, exInfo), acks)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
