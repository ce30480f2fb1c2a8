package ike

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
)

// Stateful fuzzing of the IKEv1 engine, as statefuzz_test.go does for
// IKEv2: an honest Manager (the gateway, B) and a scripted peer (A,
// v1Peer in v1scriptpeer_test.go) run an ISAKMP SA; one message of one
// exchange is the fuzzer's payload chain, encrypted with the SA's key
// and the IV the gateway expects for its message ID, so that it reaches
// the handlers behind the decryption (IKEv1 has no integrity check of
// its own: the HASH payloads are the check, and the fuzzer gets them
// right by leaving a zero placeholder, see v1Peer). Each input gets a
// fresh gateway in a synctest bubble with a manual clock; the invariants:
//
//   - no panic; no goroutine left once the Manager is closed;
//   - the gateway reacts to the fuzzed message: it sends something (its
//     next message, a notification), or logs that it dropped the
//     message or why the exchange failed (v1Reactions); an authentic
//     quick mode 3 or informational message needs no answer;
//   - a fuzzed message whose HASH does not verify is not acted on: a
//     quick mode or informational one is logged as dropped and answered
//     with nothing of its exchange; after a main mode 5 or 6 whose
//     HASH_I/HASH_R does not verify the ISAKMP SA is not established;
//   - every message the gateway sends parses, and once both sides hold
//     the same keys, decrypts and verifies (its HASH) with them;
//   - after the clock has run past every retransmission schedule, the
//     same settled checks as for IKEv2 (scenario.checkSettled), and the
//     dataplane holds exactly the IPsec SAs the status shows.
//
// The seed corpora in testdata/fuzz/FuzzV1*/seed* are the peer's honest
// messages (TestV1StatefulFuzzSeeds checks they are current;
// IKE_WRITE_FUZZ_SEEDS=1 rewrites them) and TestV1StatefulHonest checks
// that the honest exchanges complete.
//
//	go test -run '^$' -fuzz '^FuzzV1QuickMode1$' -fuzztime 60s ./ike

// v1StatefulConf is statefulConf for IKEv1 (ISAKMP SA lifetime 30
// minutes with a 10-minute margin and DPD every 10 minutes, both beyond
// settleTime; the quick modes negotiate PFS with X25519).
var v1StatefulConf = strings.Replace(statefulConf, "keyexchange=ikev2", "keyexchange=ikev1", 1)

// v1AggressiveConf also answers aggressive mode.
var v1AggressiveConf = strings.Replace(v1StatefulConf, "\tauto=add\n", "\taggressive=yes\n\tauto=add\n", 1)

// v1Reactions are the gateway's log messages for an IKEv1 message it
// dropped, and for an exchange it failed on one.
var v1Reactions = map[string]bool{
	"not an IKEv1 message":                  true,
	"message for unknown ISAKMP SA dropped": true,
	"malformed message dropped":             true,
	"answer dropped":                        true,
	"request dropped":                       true,
	"message of another exchange with a message ID in use dropped":            true,
	"message for a completed exchange dropped":                                true,
	"quick mode before phase 1 completed dropped":                             true,
	"unprotected informational message dropped":                               true,
	"informational message dropped":                                           true,
	"informational message with a wrong HASH dropped":                         true,
	"ignoring a fourth quick mode message":                                    true,
	"IKE SA event queue full: message dropped":                                true,
	"ISAKMP SA failed":                                                        true,
	"quick mode failed":                                                       true,
	"quick mode refused":                                                      true,
	"IPsec SA rekeying failed":                                                true,
	"half-open IKE SA limit reached: IKE_SA_INIT dropped":                     true,
	"peer sent an error notification during phase 1":                          true,
	"retransmitted request answered from cache":                               true,
	"peer repeated its answer: resending our last message":                    true,
	"DPD acknowledgement with an unexpected sequence number":                  true,
	"peer sent INITIAL-CONTACT: dropping the old ISAKMP SA and its IPsec SAs": true,
}

// v1Witness counts the gateway's reactions (v1Reactions) and its drops
// alone ("dropped" in the message). With IKE_FUZZ_LOG set it prints the
// whole log.
type v1Witness struct {
	reactions, drops *atomic.Int64
	next             slog.Handler
}

func (w v1Witness) Enabled(context.Context, slog.Level) bool { return true }

func (w v1Witness) Handle(ctx context.Context, r slog.Record) error {
	if v1Reactions[r.Message] {
		w.reactions.Add(1)
		if strings.Contains(r.Message, "dropped") {
			w.drops.Add(1)
		}
	}
	if w.next != nil {
		return w.next.Handle(ctx, r)
	}
	return nil
}

func (w v1Witness) WithAttrs(as []slog.Attr) slog.Handler {
	if w.next != nil {
		w.next = w.next.WithAttrs(as)
	}
	return w
}

func (w v1Witness) WithGroup(g string) slog.Handler {
	if w.next != nil {
		w.next = w.next.WithGroup(g)
	}
	return w
}

type v1World struct {
	cfg      *config.Config
	ike, esp []config.Proposal
}

func newV1World(tb testing.TB, conf string) *v1World {
	cfg := loadConfigIn(tb, tb.TempDir(), conf, secrets, addrB)
	c, ok := cfg.Conn("net")
	if !ok {
		tb.Fatal("no conn net")
	}
	return &v1World{cfg: cfg, ike: c.IKE, esp: c.ESP}
}

// v1Scenario is one gateway and its IKEv1 peer in a synctest bubble; the
// embedded scenario holds the gateway, its clock, installer and events
// (its peer is unused); reactions counts the gateway's logged reactions
// (v1Reactions), v1Drop the drops among them, and the embedded
// scenario's drops() the gateway's drop counters.
type v1Scenario struct {
	scenario
	peer      *v1Peer
	reactions atomic.Int64
	v1Drop    atomic.Int64
	// fuzzed: the fuzzed message went out, with what was counted just
	// before.
	fuzzed    bool
	fuzzStep  v1Step
	fuzzMID   uint32
	authentic bool
	mark      struct {
		received, reactions, drops int64
		counted                    uint64
	}
}

func (w *v1World) run(t *testing.T, script func(s *v1Scenario)) {
	fuzzInput(t)
	synctest.Test(t, func(t *testing.T) {
		s := w.start(t)
		// Closed also when the script stops the test, so that the
		// bubble's goroutines end.
		defer s.close()
		script(s)
		s.peer.pump()
		s.checkReaction()
		s.clk.advance(settleTime, s.peer.pump)
		s.checkSettled()
		s.checkInstalled()
	})
}

func (w *v1World) start(t *testing.T) *v1Scenario {
	s := &v1Scenario{scenario: scenario{t: t, clk: newFakeClock(), inst: newFakeInstaller(0xb0000000), evDone: make(chan struct{})}}
	s.peer = newV1Peer(t, w.ike, w.esp)
	s.peer.onFuzzed = func(st v1Step, mid uint32, c v1Chain) {
		s.fuzzed, s.fuzzStep, s.fuzzMID, s.authentic = true, st, mid, s.peer.authentic(st, mid, c)
		s.mark.received, s.mark.reactions, s.mark.drops = int64(s.peer.received+s.peer.sentCount()), s.reactions.Load(), s.v1Drop.Load()
		s.mark.counted = s.drops()
	}
	h := v1Witness{reactions: &s.reactions, drops: &s.v1Drop}
	if os.Getenv("IKE_FUZZ_LOG") != "" {
		h.next = slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})
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

// checkReaction checks the gateway's reaction to the fuzzed message,
// once the gateway is quiet after it.
func (s *v1Scenario) checkReaction() {
	if !s.fuzzed {
		return
	}
	answered := int64(s.peer.received) > s.mark.received
	dropped := s.v1Drop.Load() > s.mark.drops || s.drops() > s.mark.counted
	reacted := s.reactions.Load() > s.mark.reactions || dropped
	// Quick mode 3 and informational messages are one-way: an authentic
	// one is taken without an answer.
	oneWay := s.fuzzStep == v1StepQM3 || s.fuzzStep == v1StepInfo
	if !answered && !reacted && !(oneWay && s.authentic) {
		s.t.Errorf("fuzzed %s: neither answered nor reported as dropped or failed", s.fuzzStep)
	}
	if s.authentic {
		return
	}
	switch s.fuzzStep {
	case v1StepMM5, v1StepMM6, v1StepAM3:
		if st := s.status("net"); st.State == StateEstablished {
			s.t.Errorf("fuzzed %s whose HASH does not verify: the ISAKMP SA was established", s.fuzzStep)
		}
	default:
		if !dropped {
			s.t.Errorf("fuzzed %s whose HASH does not verify was not reported as dropped", s.fuzzStep)
		}
		if s.fuzzStep != v1StepInfo {
			for _, g := range s.peer.got {
				if g.ex == isakmp.ExchangeQuickMode && g.mid == s.fuzzMID && s.answeredAfterFuzz(g) {
					s.t.Errorf("fuzzed %s whose HASH does not verify was answered", s.fuzzStep)
				}
			}
		}
	}
}

// checkInstalled: once settled, the dataplane holds exactly the IPsec
// SAs the gateway's status shows (nothing installed and forgotten, or
// shown and never installed).
func (s *v1Scenario) checkInstalled() {
	shown := map[uint32]bool{}
	for _, c := range s.gw.Status() {
		for _, ch := range c.Children {
			shown[ch.InSPI] = true
		}
	}
	installed := map[uint32]bool{}
	for _, sa := range s.inst.all() {
		installed[sa.InSPI] = true
		if !shown[sa.InSPI] {
			s.t.Errorf("IPsec SA %08x is installed but no conn shows it", sa.InSPI)
		}
	}
	for spi := range shown {
		if !installed[spi] {
			s.t.Errorf("IPsec SA %08x is shown but not installed", spi)
		}
	}
}

// answeredAfterFuzz reports whether the gateway's quick mode message g
// came after the fuzzed message: for quick mode 1 any message of its
// exchange does; for quick mode 2 (we respond) and 3 the gateway's
// messages before it are its quick mode 1 (and none after).
func (s *v1Scenario) answeredAfterFuzz(g v1Got) bool {
	switch s.fuzzStep {
	case v1StepQM1:
		return true
	case v1StepQM2:
		// Our quick mode 2 answers its message 1; a message 3 would
		// follow only an accepted answer.
		return len(g.payloads) == 1 && g.payloads[0].Type == isakmp.PayloadHash
	}
	return false
}

// establishV1 brings conn "net" up honestly, the peer initiating main and
// quick mode, and fails when it does not come up.
func (s *v1Scenario) establishV1() {
	s.peer.continueQuick = true
	s.peer.startMainMode()
	s.peer.pump()
	if st := s.status("net"); st.State != StateEstablished || !s.peer.trusted || len(st.Children) != 1 {
		s.t.Fatalf("honest ISAKMP SA not established: %s %q, %d IPsec SAs (peer keys trusted: %v)", st.State, st.Reason, len(st.Children), s.peer.trusted)
	}
}

// The scripts of the targets.

// playV1MainMode: the peer runs main mode (and quick mode after it).
func playV1MainMode(s *v1Scenario) {
	s.peer.continueQuick = true
	s.peer.startMainMode()
	s.peer.pump()
}

// playV1Aggressive: the peer runs aggressive mode (and quick mode after
// it).
func playV1Aggressive(s *v1Scenario) {
	s.peer.continueQuick = true
	s.peer.startAggressiveMode()
	s.peer.pump()
}

// playV1Quick: main mode, then the peer's quick mode.
func playV1Quick(s *v1Scenario) {
	s.peer.startMainMode()
	s.peer.pump()
	if !s.peer.phase1Done || !s.peer.trusted {
		s.t.Fatal("honest main mode failed")
	}
	s.peer.startQuickMode()
	s.peer.pump()
}

// playV1Rekey: on the established SA with its IPsec SA, the peer
// rekeys it with a second quick mode; arm, when set, replaces its
// message 1.
func playV1Rekey(arm *v1Chain) func(s *v1Scenario) {
	return func(s *v1Scenario) {
		s.establishV1()
		if arm != nil {
			s.peer.arm(v1StepQM1, *arm)
		}
		s.peer.startQuickMode()
		s.peer.pump()
	}
}

// playV1Informational: the peer's informational message on the
// established SA (request picks the honest one).
func playV1Informational(request int) func(s *v1Scenario) {
	return func(s *v1Scenario) {
		s.establishV1()
		s.peer.sendInformational(func() v1Chain { return v1InfoRequests[request].c(s.peer) })
		s.peer.pump()
	}
}

// playV1GatewayInitiates: the gateway brings conn net up.
func playV1GatewayInitiates(s *v1Scenario) {
	s.initiated = append(s.initiated, "net")
	if err := s.gw.Up("net"); err != nil {
		s.t.Fatal(err)
	}
	s.peer.pump()
}

// v1ResponseSteps are the steps FuzzV1InitiatorResponse's kind picks.
var v1ResponseSteps = []v1Step{v1StepMM6, v1StepQM2}

// The fuzz targets.

func v1FuzzChain(first byte, body []byte) v1Chain {
	return v1Chain{isakmp.PayloadType(first), body}
}

// FuzzV1MainMode5: the peer initiates main mode; its message 5 (ID,
// HASH_I, INITIAL-CONTACT) is the input, encrypted with the SA's key
// (a zero HASH gets HASH_I over the chain's first ID); quick mode
// follows when main mode completes.
func FuzzV1MainMode5(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(v1StepMM5, v1FuzzChain(first, body))
			playV1MainMode(s)
		})
	})
}

// FuzzV1AggressiveMode3: the peer initiates aggressive mode; its
// message 3 (HASH_I, INITIAL-CONTACT) is the input, encrypted with the
// SA's key (a zero HASH gets HASH_I over the ID of message 1); quick
// mode follows when aggressive mode completes.
func FuzzV1AggressiveMode3(f *testing.F) {
	w := newV1World(f, v1AggressiveConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(v1StepAM3, v1FuzzChain(first, body))
			playV1Aggressive(s)
		})
	})
}

// FuzzV1QuickMode1: after an honest main mode, the peer's quick mode 1
// is the input (a zero first HASH gets HASH(1) over the rest).
func FuzzV1QuickMode1(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(v1StepQM1, v1FuzzChain(first, body))
			playV1Quick(s)
		})
	})
}

// FuzzV1QuickModeRekey: FuzzV1QuickMode1 where the quick mode rekeys an
// IPsec SA the peer created before (same selectors, a new SPI).
func FuzzV1QuickModeRekey(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		c := v1FuzzChain(first, body)
		w.run(t, playV1Rekey(&c))
	})
}

// FuzzV1QuickMode3: the peer's quick mode 3 is the input (a zero first
// HASH gets HASH(3)), after an honest main mode and quick mode 1 and 2.
func FuzzV1QuickMode3(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(v1StepQM3, v1FuzzChain(first, body))
			playV1Quick(s)
		})
	})
}

// FuzzV1Informational: on the established SA with its IPsec SA, the
// peer's informational message is the input (a zero first HASH gets the
// informational HASH over the rest; seeds: DPD, deletes of the IPsec and
// the ISAKMP SA, INVALID-SPI, INITIAL-CONTACT).
func FuzzV1Informational(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(v1StepInfo, v1FuzzChain(first, body))
			playV1Informational(0)(s)
		})
	})
}

// FuzzV1InitiatorResponse: the gateway initiates; the peer's answer is
// the input (kind: main mode 6, or quick mode 2 after an honest main
// mode; zero HASH placeholders as above).
func FuzzV1InitiatorResponse(f *testing.F) {
	w := newV1World(f, v1StatefulConf)
	f.Fuzz(func(t *testing.T, kind byte, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		st := v1ResponseSteps[int(kind)%len(v1ResponseSteps)]
		w.run(t, func(s *v1Scenario) {
			s.peer.arm(st, v1FuzzChain(first, body))
			playV1GatewayInitiates(s)
		})
	})
}

// TestV1StatefulHonest runs the scenarios of the IKEv1 stateful targets
// with the peer's honest messages and checks that each exchange
// completes: the harness reaches the states it claims to fuzz.
func TestV1StatefulHonest(t *testing.T) {
	w := newV1World(t, v1StatefulConf)
	// honest plays a script and checks that the gateway dropped or failed
	// nothing on the way.
	honest := func(script func(s *v1Scenario)) func(s *v1Scenario) {
		return func(s *v1Scenario) {
			script(s)
			if n := s.reactions.Load(); n != 0 {
				s.t.Errorf("the gateway reported %d drops or failures", n)
			}
		}
	}
	t.Run("main and quick mode, peer initiates", func(t *testing.T) {
		w.run(t, func(s *v1Scenario) {
			honest(playV1MainMode)(s)
			st := s.status("net")
			if st.State != StateEstablished || st.Version != 1 || len(st.Children) != 1 || len(s.inst.all()) != 1 {
				t.Errorf("net: %s %q, IKEv%d, %d IPsec SAs (%d installed)", st.State, st.Reason, st.Version, len(st.Children), len(s.inst.all()))
			}
			if q := s.peer.qm[v1QuickMID]; q == nil || !q.done {
				t.Error("quick mode 3 not sent")
			}
		})
	})
	t.Run("aggressive and quick mode, peer initiates", func(t *testing.T) {
		newV1World(t, v1AggressiveConf).run(t, func(s *v1Scenario) {
			honest(playV1Aggressive)(s)
			st := s.status("net")
			if st.State != StateEstablished || st.Version != 1 || len(st.Children) != 1 || !s.peer.trusted {
				t.Errorf("net: %s %q, IKEv%d, %d IPsec SAs", st.State, st.Reason, st.Version, len(st.Children))
			}
			if q := s.peer.qm[v1QuickMID]; q == nil || !q.done {
				t.Error("quick mode 3 not sent")
			}
		})
	})
	t.Run("main and quick mode, gateway initiates", func(t *testing.T) {
		w.run(t, func(s *v1Scenario) {
			honest(playV1GatewayInitiates)(s)
			st := s.status("net")
			if st.State != StateEstablished || st.Version != 1 || len(st.Children) != 1 || !s.peer.trusted {
				t.Errorf("net: %s %q, IKEv%d, %d IPsec SAs", st.State, st.Reason, st.Version, len(st.Children))
			}
			if len(s.peer.captured[v1StepMM6]) != 1 || len(s.peer.captured[v1StepQM2]) != 1 {
				t.Error("the peer did not answer main mode 5 and quick mode 1")
			}
		})
	})
	t.Run("the peer rekeys the IPsec SA", func(t *testing.T) {
		w.run(t, func(s *v1Scenario) {
			old := s.status("net").Children
			honest(playV1Rekey(nil))(s)
			st := s.status("net")
			if q := s.peer.qm[v1QuickMID+1]; q == nil || !q.done {
				t.Error("quick mode 3 of the rekey not sent")
			}
			if st.State != StateEstablished || len(st.Children) == 0 || st.Children[len(st.Children)-1].OutSPI != v1PeerSPI+1 {
				t.Errorf("net: %s %q, IPsec SAs %+v (before %+v): want one to SPI %08x", st.State, st.Reason, st.Children, old, v1PeerSPI+1)
			}
		})
	})
	for i, r := range v1InfoRequests {
		t.Run("peer's informational: "+r.name, func(t *testing.T) {
			w.run(t, func(s *v1Scenario) {
				honest(playV1Informational(i))(s)
				st := s.status("net")
				switch r.name {
				case "DPD":
					acked := false
					for _, g := range s.peer.got {
						for _, p := range g.payloads {
							if n, _, err := isakmp.ParseNotify(p.Body); p.Type == isakmp.PayloadN && err == nil && n.Type == isakmp.R_U_THERE_ACK {
								acked = true
							}
						}
					}
					if !acked || st.State != StateEstablished {
						t.Errorf("R-U-THERE acknowledged: %v; net %s %q", acked, st.State, st.Reason)
					}
				case "delete IPsec SA":
					if len(s.inst.all()) != 0 || len(st.Children) != 0 {
						t.Errorf("net: %s, %d IPsec SAs left", st.State, len(s.inst.all()))
					}
				case "delete ISAKMP SA":
					if n := s.gw.Counters().IKESAs; n != 0 {
						t.Errorf("%d ISAKMP SAs left", n)
					}
				default:
					if st.State != StateEstablished {
						t.Errorf("net: %s %q", st.State, st.Reason)
					}
				}
			})
		})
	}
}

// v1StatefulSeeds are the seed corpora of the IKEv1 stateful targets.
func v1StatefulSeeds(t *testing.T) map[string][][]any {
	seeds := map[string][][]any{}
	w, aggressive := newV1World(t, v1StatefulConf), newV1World(t, v1AggressiveConf)
	capture := func(target string, script func(s *v1Scenario), st v1Step, args ...any) {
		w := w
		if target == "FuzzV1AggressiveMode3" {
			w = aggressive
		}
		var c v1Chain
		w.run(t, func(s *v1Scenario) {
			script(s)
			got := s.peer.captured[st]
			if len(got) == 0 {
				t.Fatalf("no %s sent", st)
			}
			c = got[0]
		})
		seeds[target] = append(seeds[target], append(args, byte(c.first), c.body))
	}
	// The rekey's message 1 is the second the peer sends.
	w.run(t, func(s *v1Scenario) {
		playV1Rekey(nil)(s)
		if got := s.peer.captured[v1StepQM1]; len(got) != 2 {
			t.Fatalf("%d quick mode 1 sent, want 2", len(got))
		} else {
			seeds["FuzzV1QuickModeRekey"] = [][]any{{byte(got[1].first), got[1].body}}
		}
	})
	capture("FuzzV1MainMode5", playV1MainMode, v1StepMM5)
	capture("FuzzV1AggressiveMode3", playV1Aggressive, v1StepAM3)
	capture("FuzzV1QuickMode1", playV1Quick, v1StepQM1)
	capture("FuzzV1QuickMode3", playV1Quick, v1StepQM3)
	for i := range v1InfoRequests {
		capture("FuzzV1Informational", playV1Informational(i), v1StepInfo)
	}
	for i, st := range v1ResponseSteps {
		capture("FuzzV1InitiatorResponse", playV1GatewayInitiates, st, byte(i))
	}
	return seeds
}

// TestV1StatefulFuzzSeeds checks that the committed seed corpora of the
// IKEv1 stateful targets are the peer's current honest messages.
func TestV1StatefulFuzzSeeds(t *testing.T) {
	checkSeedCorpora(t, v1StatefulSeeds(t))
}
