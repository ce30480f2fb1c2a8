package ike

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Stateful fuzzing of IKE_FOLLOWUP_KE (RFC 9370 §2.2.4): the peer creates
// a CHILD SA whose proposal has ML-KEM-768 as an additional key exchange;
// the gateway answers the CREATE_CHILD_SA with a link and waits; the
// peer's IKE_FOLLOWUP_KE request is the input. A Notify
// ADDITIONAL_KEY_EXCHANGE with 8 zero bytes in it gets the gateway's
// link (scriptPeer.fixup). The invariants are statefuzz_test.go's; the
// gateway's state of the exchange, if the input does not complete it, is
// dropped within the settle time (ikev2.FollowupKETimeout).
//
//	go test -run '^$' -fuzz '^FuzzFollowupKERequest$' -fuzztime 60s ./ike

// newFollowupWorld is the stateful fuzzing gateway with ML-KEM-768 as an
// additional key exchange of its CHILD SAs.
func newFollowupWorld(tb testing.TB) *statefulWorld {
	const plain = "esp=aes128gcm16-x25519,aes128-sha256!"
	if !strings.Contains(statefulConf, plain) {
		tb.Fatal("statefulConf has no " + plain)
	}
	conf := strings.Replace(statefulConf, plain, "esp=aes128gcm16-x25519-ke1_mlkem768!", 1)
	cfg := loadConfigIn(tb, tb.TempDir(), conf, secrets, addrB)
	c, ok := cfg.Conn("net")
	if !ok {
		tb.Fatal("no conn net")
	}
	return &statefulWorld{cfg: cfg, ike: c.IKE, esp: c.ESP}
}

// peerKEM is the peer's fixed ML-KEM-768 key (the seeds stay the same).
var peerKEM = func() []byte {
	k, err := transform.NewKEM(transform.KEMLKEM768, bytes.Repeat([]byte{0x5e}, 64))
	if err != nil {
		panic(err)
	}
	return k.PublicKey()
}()

// linkPlaceholder is replaced by the gateway's link when sent.
var linkPlaceholder = message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: make([]byte, 8)}

// followupRequests are the IKE_FOLLOWUP_KE requests of the seeds: the
// honest one, one with a link the gateway never gave, one with another
// key exchange method than the negotiated one, and one without a KE.
var followupRequests = []struct {
	name   string
	c      func() chain
	answer message.NotifyType // the error notify expected, 0 for the KE
}{
	{"honest", func() chain { return chainOf(message.KE{Group: transform.KEMLKEM768, Data: peerKEM}, linkPlaceholder) }, 0},
	{"unknown link", func() chain {
		return chainOf(message.KE{Group: transform.KEMLKEM768, Data: peerKEM}, message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: []byte("not ours")})
	}, message.STATE_NOT_FOUND},
	{"other method", func() chain {
		return chainOf(message.KE{Group: transform.KECurve25519, Data: peerPub}, linkPlaceholder)
	}, message.INVALID_KE_PAYLOAD},
	{"no link", func() chain { return chainOf(message.KE{Group: transform.KEMLKEM768, Data: peerKEM}) }, message.STATE_NOT_FOUND},
}

// playFollowupKE: on an established IKE SA the peer creates a CHILD SA for
// net2 with CREATE_CHILD_SA; the gateway's answer must carry a link; the
// peer's IKE_FOLLOWUP_KE request (step stepFollowupReq) follows.
func playFollowupKE(honest func() chain) func(s *scenario) {
	return func(s *scenario) {
		s.establish(false)
		id := s.peer.sendRequest(message.CREATE_CHILD_SA, stepCreateReq, s.peer.childCreateRequest)
		s.peer.pump()
		n, ok := findNotifyIn(s.peer.answers[id], message.ADDITIONAL_KEY_EXCHANGE)
		if !ok || len(n.Data) != 8 {
			s.t.Fatalf("the gateway's CREATE_CHILD_SA answer has no 8-byte ADDITIONAL_KEY_EXCHANGE link: %v", n)
		}
		s.peer.link = n.Data
		before := s.drops()
		id = s.peer.sendRequest(message.IKE_FOLLOWUP_KE, stepFollowupReq, honest)
		s.peer.pump()
		s.requireAnswer("IKE_FOLLOWUP_KE request", s.answered(id), before)
	}
}

func findNotifyIn(ps []message.RawPayload, t message.NotifyType) (message.Notify, bool) {
	for _, n := range notifiesOf(ps) {
		if n.Type == t {
			return n, true
		}
	}
	return message.Notify{}, false
}

// FuzzFollowupKERequest: the peer's IKE_FOLLOWUP_KE request is the input.
func FuzzFollowupKERequest(f *testing.F) {
	w := newFollowupWorld(f)
	f.Fuzz(func(t *testing.T, first byte, body []byte) {
		if len(body) > maxFuzzChain {
			return
		}
		w.run(t, func(s *scenario) {
			s.peer.arm(stepFollowupReq, fuzzChain(first, body))
			playFollowupKE(followupRequests[0].c)(s)
		})
	})
}

// TestFollowupKEStateful plays the seeds' requests and checks the
// gateway's answers: the honest one completes the CHILD SA (ML-KEM in
// its algorithms); an unknown or missing link is answered STATE_NOT_FOUND,
// another method INVALID_KE_PAYLOAD naming ML-KEM-768, and in both cases
// no CHILD SA comes of it.
func TestFollowupKEStateful(t *testing.T) {
	w := newFollowupWorld(t)
	for _, r := range followupRequests {
		t.Run(r.name, func(t *testing.T) {
			w.run(t, func(s *scenario) {
				playFollowupKE(r.c)(s)
				got := s.peer.answers[s.peer.nextID-1]
				n, isErr := firstError(notifiesOf(got))
				st := s.status("net2")
				switch {
				case r.answer == 0:
					if isErr || st.State != StateEstablished || len(st.Children) != 1 || !strings.HasSuffix(st.Children[0].Algorithms, "ke1_mlkem768") {
						t.Errorf("honest IKE_FOLLOWUP_KE: answer %v, net2 %s %+v", n.Type, st.State, st.Children)
					}
					if _, ok := payloadOf(got, message.PayloadKE); !ok {
						t.Errorf("the last IKE_FOLLOWUP_KE answer has no KE payload")
					}
				default:
					if !isErr || n.Type != r.answer {
						t.Errorf("answered %v, want %s", n.Type, r.answer)
					}
					if r.answer == message.INVALID_KE_PAYLOAD && !bytes.Equal(n.Data, []byte{0, byte(transform.KEMLKEM768)}) {
						t.Errorf("INVALID_KE_PAYLOAD names %x, want ML-KEM-768", n.Data)
					}
					if len(st.Children) != 0 {
						t.Errorf("a CHILD SA for net2 after a refused IKE_FOLLOWUP_KE: %+v", st.Children)
					}
				}
			})
		})
	}
}

// TestFollowupKEFuzzSeeds checks the committed seed corpus of
// FuzzFollowupKERequest (IKE_WRITE_FUZZ_SEEDS=1 rewrites it).
func TestFollowupKEFuzzSeeds(t *testing.T) {
	var seeds [][]any
	for _, r := range followupRequests {
		c := r.c()
		seeds = append(seeds, []any{byte(c.first), c.body})
	}
	checkSeedCorpora(t, map[string][][]any{"FuzzFollowupKERequest": seeds})
}

func payloadOf(ps []message.RawPayload, t message.PayloadType) (message.RawPayload, bool) {
	for _, p := range ps {
		if p.Type == t {
			return p, true
		}
	}
	return message.RawPayload{}, false
}
