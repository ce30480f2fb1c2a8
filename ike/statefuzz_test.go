package ike

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Stateful fuzzing: an honest Manager (the gateway, B) and a scripted
// peer (A, scriptpeer_test.go) run an IKE SA; one message of one exchange
// is the fuzzer's payload chain, sent with the SA's valid keys and the
// right message ID, so that it reaches the handlers behind the integrity
// check. Each input gets a fresh gateway in a synctest bubble with a
// manual clock, and these invariants are checked:
//
//   - no panic; no goroutine left once the Manager is closed (synctest
//     fails a bubble whose goroutines do not end);
//   - a fuzzed request is answered (a response with its message ID that
//     decrypts with the SA's keys), or the gateway's drop counters
//     (Counters.Drops) count it; a forged fragment changes nothing and is not
//     answered (unless its message ID looks like a retransmission: then
//     the cached response may go out again);
//   - every message the gateway sends parses, and decrypts with the keys
//     both sides agreed on;
//   - after the clock has run past every retransmission schedule and the
//     half-open timeout, nothing is left hanging: no conn is connecting,
//     a failed conn says why, no half-open IKE SA is left, and a conn
//     the gateway initiated is established or ended with a typed reason
//     (a Failure, or an IKEDown/ChildDown with a cause).
//
// The seed corpora in testdata/fuzz/Fuzz*/seed* are the peer's honest
// messages of each exchange (TestStatefulFuzzSeeds checks they are
// current; IKE_WRITE_FUZZ_SEEDS=1 rewrites them), and TestStatefulHonest
// checks that the honest exchanges complete.
//
//	go test -run '^$' -fuzz '^FuzzCreateChildRequest$' -fuzztime 60s ./ike

// statefulConf is the gateway's ipsec.conf. The IKE rekey falls due at
// 20 minutes and DPD at 10 minutes, both beyond settleTime, so that
// only the targets that wait for them see them.
const statefulConf = `conn %default
	keyexchange=ikev2
	authby=secret
	left=203.0.113.1
	right=198.51.100.1
	rightsubnet=10.1.0.0/24
	ike=aes128-sha256-x25519!
	esp=aes128gcm16-x25519,aes128-sha256!
	keyingtries=1
	reauth=no
	ikelifetime=30m
	margintime=10m
	rekeyfuzz=0%
	dpdaction=clear
	dpddelay=10m
	auto=add

conn net
	leftsubnet=10.2.0.0/24

conn net2
	leftsubnet=10.2.1.0/24
`

const (
	// settleTime is how far the clock runs after the fuzzed message:
	// beyond the retransmission schedule (about 165 s), the half-open
	// timeout (30 s) and the linger of a rekeyed IKE SA (60 s).
	settleTime = 5 * time.Minute
	// maxFuzzChain bounds the fuzzed chains (larger inputs are skipped:
	// they add nothing a smaller one cannot reach, and cost time).
	maxFuzzChain = 4096
)

// statefulWorld is what the inputs of one fuzz target share: the loaded
// configuration and the proposals the peer uses.
type statefulWorld struct {
	cfg      *config.Config
	ike, esp []config.Proposal
}

func newStatefulWorld(tb testing.TB) *statefulWorld {
	cfg := loadConfigIn(tb, tb.TempDir(), statefulConf, secrets, addrB)
	c, ok := cfg.Conn("net")
	if !ok {
		tb.Fatal("no conn net")
	}
	return &statefulWorld{cfg: cfg, ike: c.IKE, esp: c.ESP}
}

// scenario is one gateway and its peer in a synctest bubble.
type scenario struct {
	t         *testing.T
	gw        *Manager
	inst      *fakeInstaller
	clk       *fakeClock
	peer      *scriptPeer
	initiated []string // conns the gateway was told to bring up (and not down)
	// established: the CHILD SAs installed once the honest IKE SA was up.
	established []ChildSA

	evMu   sync.Mutex
	events []Event
	evDone chan struct{}
}

// run plays script in a fresh scenario, lets the clock run past every
// schedule, checks that the gateway settled, and closes it.
func (w *statefulWorld) run(t *testing.T, script func(s *scenario)) {
	fuzzInput(t)
	synctest.Test(t, func(t *testing.T) {
		s := w.start(t)
		script(s)
		s.settle()
		s.checkSettled()
		s.close()
	})
}

func (w *statefulWorld) start(t *testing.T) *scenario {
	s := &scenario{t: t, clk: newFakeClock(), inst: newFakeInstaller(0xb0000000), evDone: make(chan struct{})}
	s.peer = newScriptPeer(t, w.ike, w.esp)
	// With IKE_FUZZ_LOG set the whole log is printed (to replay a failing
	// input with -v).
	var h slog.Handler = slog.DiscardHandler
	if os.Getenv("IKE_FUZZ_LOG") != "" {
		h = slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	m, err := NewManager(Options{Config: w.cfg, Send: s.peer.send, Installer: s.inst, Clock: s.clk,
		Logger: slog.New(h), LocalAddrs: []netip.Addr{addrB}, Encapsulation: EncapAuto})
	if err != nil {
		t.Fatal(err)
	}
	s.gw, s.peer.gw = m, m
	sub := m.Subscribe()
	go func() {
		defer close(s.evDone)
		for ev := range sub.Events() {
			s.evMu.Lock()
			s.events = append(s.events, ev)
			s.evMu.Unlock()
		}
	}()
	return s
}

func (s *scenario) close() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.gw.Close(ctx)
	<-s.evDone
}

// settle runs the clock past every schedule, the peer answering what it
// answers.
func (s *scenario) settle() {
	s.peer.pump()
	s.clk.advance(settleTime, s.peer.pump)
}

// up tells the gateway to bring a conn up.
func (s *scenario) up(conn string) {
	s.initiated = append(s.initiated, conn)
	if err := s.gw.Up(conn); err != nil {
		s.t.Fatalf("Up %s: %v", conn, err)
	}
	s.peer.pump()
}

func (s *scenario) status(conn string) ConnStatus {
	for _, c := range s.gw.Status() {
		if c.Name == conn {
			return c
		}
	}
	return ConnStatus{}
}

// established brings conn "net" up honestly, the peer initiating (or the
// gateway, gwInitiates), and fails the test when it does not come up:
// the fuzz targets that start from an established IKE SA rely on it.
func (s *scenario) establish(gwInitiates bool) {
	if gwInitiates {
		s.up("net")
	} else {
		s.peer.continueAuth = true
		s.peer.sendInitRequest()
		s.peer.pump()
	}
	if st := s.status("net"); st.State != StateEstablished || !s.peer.trusted {
		s.t.Fatalf("honest IKE SA not established: %s %q (peer keys trusted: %v)", st.State, st.Reason, s.peer.trusted)
	}
	s.established = s.inst.all()
}

// drops is the number of received messages the gateway dropped so far,
// whatever the reason (its drop counters).
func (s *scenario) drops() uint64 {
	var n uint64
	for _, d := range s.gw.Counters().Drops {
		n += d
	}
	return n
}

// requireAnswer checks the gateway's reaction to our request id: an
// answer, or a drop counted since before it was sent (dropsBefore).
func (s *scenario) requireAnswer(what string, answered bool, dropsBefore uint64) {
	if !answered && s.drops() == dropsBefore {
		s.t.Errorf("%s: neither answered nor reported as dropped", what)
	}
}

func (s *scenario) answered(id uint32) bool {
	_, ok := s.peer.answers[id]
	return ok
}

func (s *scenario) eventCount() int {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	return len(s.events)
}

// explained reports whether a conn's end has a typed reason among the
// events: a Failure, or an IKEDown or ChildDown with a cause.
func (s *scenario) explained(conn string) bool {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	for _, ev := range s.events {
		if !slices.Contains(ev.Conns(), conn) {
			continue
		}
		switch e := ev.(type) {
		case shared.Failure:
			return true
		case shared.IKEDown:
			if e.Cause != shared.CauseNone || e.Failed {
				return true
			}
		case shared.ChildDown:
			if e.Cause != shared.CauseNone {
				return true
			}
		}
	}
	return false
}

// checkSettled: nothing hangs once the clock has run past every schedule.
func (s *scenario) checkSettled() {
	for _, c := range s.gw.Status() {
		switch c.State {
		case StateConnecting:
			s.t.Errorf("conn %s still connecting after %s (reason %q)", c.Name, settleTime, c.Reason)
		case StatePhase1Failed, StatePhase2Failed:
			if c.Reason == "" {
				s.t.Errorf("conn %s is %s without a reason", c.Name, c.State)
			}
		}
	}
	if n := s.gw.Counters().HalfOpen; n != 0 {
		s.t.Errorf("%d half-open IKE SAs left after %s", n, settleTime)
	}
	for _, name := range s.initiated {
		if st := s.status(name); st.State != StateEstablished && !s.explained(name) {
			s.t.Errorf("conn %s the gateway initiated is %s without a Failure or a cause for its end", name, st.State)
		}
	}
}

// The scripts of the targets: the honest exchanges up to the message the
// target replaces (armed by the caller), then what follows it.

// playInitRequest: the peer starts the IKE SA (IKE_SA_INIT, then IKE_AUTH).
func playInitRequest(s *scenario) {
	s.peer.continueAuth = true
	before := s.drops()
	s.peer.sendInitRequest()
	s.peer.pump()
	s.requireAnswer("IKE_SA_INIT request", s.peer.initAnswered, before)
}

// playAuthRequest: IKE_AUTH after an honest IKE_SA_INIT.
func playAuthRequest(s *scenario) {
	before := s.drops()
	s.peer.sendInitRequest()
	s.peer.pump()
	if !s.peer.trusted {
		s.t.Fatal("honest IKE_SA_INIT failed")
	}
	id := s.peer.sendRequest(message.IKE_AUTH, stepAuthReq, s.peer.honestAuthRequest)
	s.peer.pump()
	s.requireAnswer("IKE_AUTH request", s.answered(id), before)
}

// playGatewayInitiates: the gateway brings conn net up; the peer's
// answer of the armed step is the target.
func playGatewayInitiates(s *scenario) { s.up("net") }

// playProtectedRequest: a request of the peer on the established IKE SA.
func playProtectedRequest(ex message.ExchangeType, st step, honest func(*scriptPeer) chain) func(s *scenario) {
	return func(s *scenario) {
		s.establish(false)
		before := s.drops()
		id := s.peer.sendRequest(ex, st, func() chain { return honest(s.peer) })
		s.peer.pump()
		s.requireAnswer(ex.String()+" request", s.answered(id), before)
	}
}

// createChildShapes are the CREATE_CHILD_SA requests the gateway makes
// (FuzzCreateChildResponse's kinds) and the peer makes (the seeds of
// FuzzCreateChildRequest).
var createChildShapes = []struct {
	name    string
	trigger func(s *scenario)
	request func(p *scriptPeer) chain
}{
	{"new CHILD SA", func(s *scenario) { s.up("net2") }, (*scriptPeer).childCreateRequest},
	{"CHILD SA rekey", func(s *scenario) {
		sas := s.inst.all()
		if len(sas) != 1 || !s.gw.RekeyChild(sas[0].InSPI, true) {
			s.t.Fatalf("cannot rekey the CHILD SA (%d installed)", len(sas))
		}
		s.peer.pump()
	}, (*scriptPeer).childRekeyRequest},
	{"IKE SA rekey", func(s *scenario) { s.clk.advance(20*time.Minute, s.peer.pump) }, (*scriptPeer).ikeRekeyRequest},
}

// infoShapes are the INFORMATIONAL requests the gateway makes
// (FuzzInformationalResponse's kinds).
var infoShapes = []struct {
	name    string
	trigger func(s *scenario)
}{
	{"DPD", func(s *scenario) { s.clk.advance(10*time.Minute, s.peer.pump) }},
	{"delete CHILD SA", func(s *scenario) {
		sas := s.inst.all()
		if len(sas) != 1 || !s.gw.DeleteChild(sas[0].InSPI) {
			s.t.Fatalf("cannot delete the CHILD SA (%d installed)", len(sas))
		}
		// Taken down on request: its end needs no other reason.
		s.initiated = slices.DeleteFunc(s.initiated, func(n string) bool { return n == "net" })
		s.peer.pump()
	}},
	{"delete IKE SA", func(s *scenario) {
		if err := s.gw.Down("net"); err != nil {
			s.t.Fatal(err)
		}
		s.peer.pump()
	}},
	{"INVALID_SPI", func(s *scenario) {
		s.gw.ReportInvalidSPI(addrA, 0x12345678)
		s.peer.pump()
	}},
}

// playGatewayRequest: the gateway makes a request of kind trigger on the
// established IKE SA; the peer's answer at step st is the target.
func playGatewayRequest(trigger func(s *scenario), st step) func(s *scenario) {
	return func(s *scenario) {
		s.establish(true)
		trigger(s)
		if len(s.peer.captured[st]) == 0 && !s.peer.used[st] {
			s.t.Fatalf("the gateway's request did not come: the peer sent no %s", st)
		}
	}
}

// playFragments: a request sent as IKE fragments (RFC 7383) whose
// fields and cuts come from plan (fragmentPlan), then, whatever became of
// it, the honest request whole with the same message ID: an answer (or a
// reported drop) must follow, so that no fragment leaves the IKE SA stuck.
func playFragments(kind int, c chain, plan []byte) func(s *scenario) {
	return func(s *scenario) {
		ex, honest := fragmentKinds[kind].ex, fragmentKinds[kind].request
		if ex == message.IKE_AUTH {
			s.peer.sendInitRequest()
			s.peer.pump()
			if !s.peer.trusted {
				s.t.Fatal("honest IKE_SA_INIT failed")
			}
		} else {
			s.establish(false)
		}
		p := s.peer
		id := p.nextID
		h := p.header(ex, id, false)
		pt := p.fixup(h, c)
		for _, f := range fragmentPlan(plan, len(pt.body)) {
			first := message.PayloadNone
			if f.hdr.Number == 1 {
				first = pt.first
			}
			sent, events := p.pending(), s.eventCount()
			p.deliver(p.seal(h, chain{first: first}, &f.hdr, pt.body[f.from:f.to], f.forge))
			synctest.Wait()
			// A forged fragment is dropped; at most, when its message ID
			// was answered already, the cached answer goes out again.
			if f.forge && (!p.replays(sent) || s.eventCount() != events) {
				s.t.Errorf("a fragment failing its integrity check (%d/%d) was answered or changed the SA", f.hdr.Number, f.hdr.Total)
			}
		}
		p.pump()
		before := s.drops()
		whole := p.fixup(h, honest(p))
		p.deliver(p.seal(h, whole, nil, whole.body, false))
		p.nextID = id + 1
		p.pump()
		s.requireAnswer(fmt.Sprintf("%s request %d after fragments", ex, id), s.answered(id), before)
	}
}

var fragmentKinds = []struct {
	ex      message.ExchangeType
	request func(p *scriptPeer) chain
}{
	{message.IKE_AUTH, (*scriptPeer).honestAuthRequest},
	{message.CREATE_CHILD_SA, (*scriptPeer).childCreateRequest},
	{message.INFORMATIONAL, func(*scriptPeer) chain { return infoRequests[1].c() }},
}

type fragment struct {
	hdr      message.FragmentHeader
	from, to int
	forge    bool
}

// fragmentPlan reads a fuzzer's fragmentation of n plaintext bytes: 8
// bytes per fragment (at most 64), big-endian Fragment Number, Total
// Fragments, offset and length of its share (clipped to the plaintext;
// the top bit of the length forges the fragment: its ICV is wrong).
// Without a whole record the message goes as one fragment.
func fragmentPlan(plan []byte, n int) []fragment {
	if len(plan) < 8 {
		return []fragment{{hdr: message.FragmentHeader{Number: 1, Total: 1}, to: n}}
	}
	var out []fragment
	for len(plan) >= 8 && len(out) < 64 {
		num, tot := binary.BigEndian.Uint16(plan), binary.BigEndian.Uint16(plan[2:])
		off, l := int(binary.BigEndian.Uint16(plan[4:])), binary.BigEndian.Uint16(plan[6:])
		from := min(off, n)
		out = append(out, fragment{hdr: message.FragmentHeader{Number: num, Total: tot},
			from: from, to: min(from+int(l&0x7fff), n), forge: l&0x8000 != 0})
		plan = plan[8:]
	}
	return out
}

// planOf cuts n bytes into equal fragments, delivered in the given order
// of fragment numbers (seeds).
func planOf(n int, order ...int) []byte {
	total := 0
	for _, o := range order {
		total = max(total, o)
	}
	share := (n + total - 1) / total
	var b []byte
	for _, o := range order {
		b = binary.BigEndian.AppendUint16(b, uint16(o))
		b = binary.BigEndian.AppendUint16(b, uint16(total))
		b = binary.BigEndian.AppendUint16(b, uint16((o-1)*share))
		b = binary.BigEndian.AppendUint16(b, uint16(share))
	}
	return b
}

// The fuzz targets.

func fuzzChain(first byte, body []byte) chain {
	return chain{message.PayloadType(first), body}
}

// FuzzInitRequest: the peer's IKE_SA_INIT request is the input (the
// header is ours: SPIi, message ID 0); the gateway answers it, and when
// the request still carries our KE value, the peer goes on with an
// honest IKE_AUTH.
func FuzzInitRequest(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepInitReq, fuzzChain(first, body))
			playInitRequest(s)
		})
	})
}

// FuzzInitResponse: the gateway initiates; the peer's IKE_SA_INIT
// response is the input (NAT_DETECTION notifications with zero data get
// the right hashes). A retry it provokes (COOKIE, INVALID_KE_PAYLOAD) is
// answered honestly, and IKE_AUTH follows when the keys agree.
func FuzzInitResponse(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepInitRsp, fuzzChain(first, body))
			playGatewayInitiates(s)
		})
	})
}

// FuzzAuthRequest: after an honest IKE_SA_INIT, the peer's IKE_AUTH
// request is the input, sealed with the SA's keys (an AUTH payload of
// method 2 with zero data gets the right MAC over the chain's IDi).
func FuzzAuthRequest(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepAuthReq, fuzzChain(first, body))
			playAuthRequest(s)
		})
	})
}

// FuzzAuthResponse: the gateway initiates; the peer's IKE_AUTH response
// is the input (AUTH placeholders as in FuzzAuthRequest, over the IDr).
func FuzzAuthResponse(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepAuthRsp, fuzzChain(first, body))
			playGatewayInitiates(s)
		})
	})
}

// FuzzCreateChildRequest: on an established IKE SA, the peer's
// CREATE_CHILD_SA request is the input (seeds: a new CHILD SA, a CHILD SA
// rekey, an IKE SA rekey).
func FuzzCreateChildRequest(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepCreateReq, fuzzChain(first, body))
			playProtectedRequest(message.CREATE_CHILD_SA, stepCreateReq, (*scriptPeer).childCreateRequest)(s)
		})
	})
}

// FuzzCreateChildResponse: on an established IKE SA the gateway makes a
// CREATE_CHILD_SA request (kind: a new CHILD SA, a CHILD SA rekey, an IKE
// SA rekey); the peer's response is the input.
func FuzzCreateChildResponse(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, kind byte, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		shape := createChildShapes[int(kind)%len(createChildShapes)]
		w.run(t, func(s *scenario) {
			s.peer.arm(stepCreateRsp, fuzzChain(first, body))
			playGatewayRequest(shape.trigger, stepCreateRsp)(s)
		})
	})
}

// FuzzInformationalRequest: on an established IKE SA, the peer's
// INFORMATIONAL request is the input (seeds: a liveness check, deletes of
// the CHILD and the IKE SA, INVALID_SPI).
func FuzzInformationalRequest(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepInfoReq, fuzzChain(first, body))
			playProtectedRequest(message.INFORMATIONAL, stepInfoReq, func(*scriptPeer) chain { return chain{} })(s)
		})
	})
}

// FuzzInformationalResponse: on an established IKE SA the gateway makes
// an INFORMATIONAL request (kind: DPD, a CHILD SA delete, the IKE SA's
// delete, INVALID_SPI); the peer's response is the input.
func FuzzInformationalResponse(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, kind byte, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		shape := infoShapes[int(kind)%len(infoShapes)]
		w.run(t, func(s *scenario) {
			s.peer.arm(stepInfoRsp, fuzzChain(first, body))
			playGatewayRequest(shape.trigger, stepInfoRsp)(s)
		})
	})
}

// FuzzFragments: a request of the peer (kind: IKE_AUTH after IKE_SA_INIT,
// CREATE_CHILD_SA or INFORMATIONAL on the established SA) goes out as IKE
// fragments with valid keys: the inner chain and the fragmentation
// (numbers, totals, cuts, duplicates, order, forged ICVs; fragmentPlan)
// are the input.
func FuzzFragments(f *testing.F) {
	w := newStatefulWorld(f)
	f.Fuzz(func(t *testing.T, kind byte, first byte, body []byte, plan []byte) {
		if len(body) > 2*maxFuzzChain {
			return
		}
		w.run(t, playFragments(int(kind)%len(fragmentKinds), fuzzChain(first, body), plan))
	})
}

// TestStatefulHonest runs every scenario of the stateful fuzz targets
// with the peer's honest messages (their seeds) and checks that each
// exchange completes: the harness must reach the states it claims to
// fuzz.
func TestStatefulHonest(t *testing.T) {
	w := newStatefulWorld(t)
	t.Run("IKE_SA_INIT and IKE_AUTH, peer initiates", func(t *testing.T) {
		w.run(t, func(s *scenario) {
			playInitRequest(s)
			if st := s.status("net"); st.State != StateEstablished || len(s.inst.all()) != 1 || !s.answered(1) {
				t.Errorf("net: %s %q, %d CHILD SAs", st.State, st.Reason, len(s.inst.all()))
			}
		})
	})
	t.Run("IKE_SA_INIT and IKE_AUTH, gateway initiates", func(t *testing.T) {
		w.run(t, func(s *scenario) {
			playGatewayInitiates(s)
			if st := s.status("net"); st.State != StateEstablished || len(s.inst.all()) != 1 {
				t.Errorf("net: %s %q, %d CHILD SAs", st.State, st.Reason, len(s.inst.all()))
			}
		})
	})
	for _, shape := range createChildShapes {
		t.Run("peer's CREATE_CHILD_SA: "+shape.name, func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playProtectedRequest(message.CREATE_CHILD_SA, stepCreateReq, shape.request)(s)
				rsp := s.peer.answers[2]
				if n, ok := firstError(notifiesOf(rsp)); ok {
					t.Fatalf("refused with %s", n.Type)
				}
				switch shape.name {
				case "new CHILD SA":
					if st := s.status("net2"); st.State != StateEstablished {
						t.Errorf("net2: %s %q", st.State, st.Reason)
					}
				case "CHILD SA rekey":
					if n := len(s.inst.all()); n != 2 {
						t.Errorf("%d CHILD SAs installed, want the old and the new one", n)
					}
				case "IKE SA rekey":
					if st := s.status("net"); st.State != StateEstablished || st.IKEInfo.SPIi != peerRekeySPI {
						t.Errorf("net: %s, IKE SPIi %016x, want the rekeyed SA's %016x", st.State, st.IKEInfo.SPIi, peerRekeySPI)
					}
				}
			})
		})
	}
	for _, r := range infoRequests {
		t.Run("peer's INFORMATIONAL: "+r.name, func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playProtectedRequest(message.INFORMATIONAL, stepInfoReq, func(*scriptPeer) chain { return r.c() })(s)
				st := s.status("net")
				switch r.name {
				case "delete CHILD SA":
					if len(s.inst.all()) != 0 || st.State != StateDown {
						t.Errorf("net: %s, %d CHILD SAs", st.State, len(s.inst.all()))
					}
				case "delete IKE SA":
					if st.State != StateDown || s.gw.Counters().IKESAs != 0 {
						t.Errorf("net: %s, %d IKE SAs", st.State, s.gw.Counters().IKESAs)
					}
				default:
					if st.State != StateEstablished {
						t.Errorf("net: %s %q", st.State, st.Reason)
					}
				}
			})
		})
	}
	for _, shape := range createChildShapes {
		t.Run("gateway's CREATE_CHILD_SA: "+shape.name, func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playGatewayRequest(shape.trigger, stepCreateRsp)(s)
				old := s.established
				st := s.status("net")
				switch shape.name {
				case "new CHILD SA":
					if st2 := s.status("net2"); st2.State != StateEstablished {
						t.Errorf("net2: %s %q", st2.State, st2.Reason)
					}
				case "CHILD SA rekey":
					if now := s.inst.all(); len(now) != 1 || len(old) != 1 || now[0].InSPI == old[0].InSPI {
						t.Errorf("CHILD SAs before %v, after %v: want one, replaced", old, now)
					}
				case "IKE SA rekey":
					if st.IKEInfo.SPIr != peerRekeySPI {
						t.Errorf("IKE SPIr %016x, want the rekeyed SA's %016x", st.IKEInfo.SPIr, peerRekeySPI)
					}
				}
				if st.State != StateEstablished {
					t.Errorf("net: %s %q", st.State, st.Reason)
				}
			})
		})
	}
	for _, shape := range infoShapes {
		t.Run("gateway's INFORMATIONAL: "+shape.name, func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playGatewayRequest(shape.trigger, stepInfoRsp)(s)
				st := s.status("net")
				want := StateEstablished
				if strings.HasPrefix(shape.name, "delete") {
					want = StateDown
				}
				if st.State != want {
					t.Errorf("net: %s %q, want %s", st.State, st.Reason, want)
				}
			})
		})
	}
	for i, seed := range fragmentSeeds(w) {
		t.Run(fmt.Sprintf("fragments %d", i), func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playFragments(seed.kind, seed.c, seed.plan)(s)
				if rsp, ok := s.peer.answers[s.peer.nextID-1]; !ok {
					t.Error("not answered")
				} else if n, ok := firstError(notifiesOf(rsp)); ok {
					t.Errorf("refused with %s", n.Type)
				}
			})
		})
	}
}

// firstError returns the first error notification among ns.
func firstError(ns []message.Notify) (message.Notify, bool) {
	for _, n := range ns {
		if n.Type.IsError() {
			return n, true
		}
	}
	return message.Notify{}, false
}

// statefulSeeds are the seed corpora of the stateful targets: the
// peer's honest message at the target's step in each scenario, as the
// arguments of the fuzz function.
func statefulSeeds(t *testing.T, w *statefulWorld) map[string][][]any {
	seeds := map[string][][]any{}
	capture := func(script func(s *scenario), st step, args ...any) {
		var c chain
		w.run(t, func(s *scenario) {
			script(s)
			if got := s.peer.captured[st]; len(got) > 0 {
				c = got[0]
			} else {
				t.Fatalf("no %s sent", st)
			}
		})
		target := map[step]string{stepInitReq: "FuzzInitRequest", stepInitRsp: "FuzzInitResponse", stepAuthReq: "FuzzAuthRequest",
			stepAuthRsp: "FuzzAuthResponse", stepCreateReq: "FuzzCreateChildRequest", stepCreateRsp: "FuzzCreateChildResponse",
			stepInfoReq: "FuzzInformationalRequest", stepInfoRsp: "FuzzInformationalResponse"}[st]
		seeds[target] = append(seeds[target], append(args, byte(c.first), c.body))
	}
	capture(playInitRequest, stepInitReq)
	capture(playInitRequest, stepAuthReq)
	capture(playGatewayInitiates, stepInitRsp)
	capture(playGatewayInitiates, stepAuthRsp)
	for i, shape := range createChildShapes {
		capture(playProtectedRequest(message.CREATE_CHILD_SA, stepCreateReq, shape.request), stepCreateReq)
		capture(playGatewayRequest(shape.trigger, stepCreateRsp), stepCreateRsp, byte(i))
	}
	for _, r := range infoRequests {
		capture(playProtectedRequest(message.INFORMATIONAL, stepInfoReq, func(*scriptPeer) chain { return r.c() }), stepInfoReq)
	}
	for i, shape := range infoShapes {
		capture(playGatewayRequest(shape.trigger, stepInfoRsp), stepInfoRsp, byte(i))
	}
	for _, f := range fragmentSeeds(w) {
		seeds["FuzzFragments"] = append(seeds["FuzzFragments"], []any{byte(f.kind), byte(f.c.first), f.c.body, f.plan})
	}
	return seeds
}

// corpusFile renders fuzz arguments in the go-fuzz corpus format.
func corpusFile(args ...any) string {
	s := "go test fuzz v1\n"
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			s += fmt.Sprintf("[]byte(%q)\n", v)
		case byte:
			s += fmt.Sprintf("byte(%q)\n", v)
		default:
			panic(fmt.Sprintf("corpus argument of type %T", a))
		}
	}
	return s
}

// TestStatefulFuzzSeeds checks that the committed seed corpora of the
// stateful targets are the peer's current honest messages (go test
// replays them); IKE_WRITE_FUZZ_SEEDS=1 rewrites them.
func TestStatefulFuzzSeeds(t *testing.T) {
	checkSeedCorpora(t, statefulSeeds(t, newStatefulWorld(t)))
}

// checkSeedCorpora compares the committed seed corpora of targets with
// seeds (the arguments of each seed, in order), or with
// IKE_WRITE_FUZZ_SEEDS=1 rewrites them.
func checkSeedCorpora(t *testing.T, seeds map[string][][]any) {
	write := os.Getenv("IKE_WRITE_FUZZ_SEEDS") != ""
	for target, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", target)
		if write {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "seed*"))
			for _, f := range old {
				os.Remove(f)
			}
		}
		for i, args := range list {
			name := filepath.Join(dir, fmt.Sprintf("seed%02d", i))
			want := corpusFile(args...)
			if write {
				if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(name); err != nil || string(got) != want {
				t.Errorf("%s is not the current seed (err %v); run with IKE_WRITE_FUZZ_SEEDS=1", name, err)
			}
		}
		if extra, _ := filepath.Glob(filepath.Join(dir, fmt.Sprintf("seed%02d", len(list)))); len(extra) > 0 && !write {
			t.Errorf("%s: stale seed files from %s on; run with IKE_WRITE_FUZZ_SEEDS=1", dir, extra[0])
		}
	}
}

type fragmentSeed struct {
	kind int
	c    chain
	plan []byte
}

// fragmentSeeds: IKE_AUTH in three fragments, a new CHILD SA in two
// (arriving in reverse order, and with a duplicate), a CHILD SA delete in
// one.
func fragmentSeeds(w *statefulWorld) []fragmentSeed {
	p := newScriptPeer(nil, w.ike, w.esp)
	auth, child, del := p.honestAuthRequest(), p.childCreateRequest(), infoRequests[1].c()
	return []fragmentSeed{
		{0, auth, planOf(len(auth.body), 1, 2, 3)},
		{1, child, planOf(len(child.body), 2, 1)},
		{1, child, planOf(len(child.body), 1, 1, 2)},
		{2, del, planOf(len(del.body), 1)},
	}
}
