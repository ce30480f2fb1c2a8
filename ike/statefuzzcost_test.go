package ike

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// statefulFamily is the honest scenario (the seed) of one family of
// stateful fuzz targets: the targets named in it replay this prefix
// before the message they fuzz.
type statefulFamily struct {
	name string
	run  func(t *testing.T)
}

// statefulFamilies returns the families.
func statefulFamilies(t *testing.T) (families []statefulFamily) {
	w, fw := newStatefulWorld(t), newFollowupWorld(t)
	v1 := newV1World(t, v1StatefulConf)
	v2 := func(name string, w *statefulWorld, script func(s *scenario)) {
		families = append(families, statefulFamily{name, func(t *testing.T) { w.run(t, script) }})
	}
	v2("IKE_SA_INIT request (FuzzInitRequest)", w, playInitRequest)
	v2("IKE_AUTH request (FuzzAuthRequest)", w, playAuthRequest)
	v2("gateway initiates (FuzzInitResponse, FuzzAuthResponse)", w, playGatewayInitiates)
	v2("INFORMATIONAL request (FuzzInformationalRequest)", w,
		playProtectedRequest(message.INFORMATIONAL, stepInfoReq, func(*scriptPeer) chain { return chain{} }))
	v2("CREATE_CHILD_SA request (FuzzCreateChildRequest)", w,
		playProtectedRequest(message.CREATE_CHILD_SA, stepCreateReq, (*scriptPeer).childCreateRequest))
	for _, shape := range createChildShapes {
		v2("CREATE_CHILD_SA response, "+shape.name+" (FuzzCreateChildResponse)", w, playGatewayRequest(shape.trigger, stepCreateRsp))
	}
	v2("INFORMATIONAL response, DPD (FuzzInformationalResponse)", w, playGatewayRequest(infoShapes[0].trigger, stepInfoRsp))
	for i, seed := range fragmentSeeds(w) {
		v2("fragments "+strconv.Itoa(i)+" (FuzzFragments)", w, playFragments(seed.kind, seed.c, seed.plan))
	}
	v2("IKE_FOLLOWUP_KE request (FuzzFollowupKERequest)", fw, playFollowupKE(followupRequests[0].c))
	v1f := func(name string, script func(s *v1Scenario)) {
		families = append(families, statefulFamily{name, func(t *testing.T) { v1.run(t, script) }})
	}
	v1f("IKEv1 main mode (FuzzV1MainMode5)", playV1MainMode)
	v1f("IKEv1 quick mode (FuzzV1QuickMode1, FuzzV1QuickMode3)", playV1Quick)
	v1f("IKEv1 quick mode rekey (FuzzV1QuickModeRekey)", playV1Rekey(nil))
	v1f("IKEv1 gateway initiates (FuzzV1InitiatorResponse)", playV1GatewayInitiates)
	return families
}

// TestStatefulInputCost measures what one input of the stateful fuzz
// targets costs, family by family: with IKE_INPUT_COST=N it runs each
// family's honest scenario N times as a fuzz input runs (a fresh gateway
// and peer in a synctest bubble, the settle time, the invariants) and
// logs the wall and CPU time (user+system, every thread of the process)
// per input. Go's fuzzing engine writes no CPU profile, so this is how
// to profile an input:
//
//	IKE_INPUT_COST=2000 IKE_INPUT_COST_ONLY=CREATE_CHILD_SA go test -run '^TestStatefulInputCost$' -v -cpuprofile cpu.out ./ike
//
// (IKE_INPUT_COST_ONLY picks the families whose names contain it; a
// subtest pattern in -run would be matched, with regexps compiled, for
// each input, and show in the profile.) Without IKE_INPUT_COST it is
// skipped: it measures, and checks nothing the seeds of the targets do
// not check already.
func TestStatefulInputCost(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("IKE_INPUT_COST"))
	if n <= 0 {
		t.Skip("set IKE_INPUT_COST to the number of inputs per family")
	}
	families := statefulFamilies(t)
	for _, f := range families {
		if !strings.Contains(f.name, os.Getenv("IKE_INPUT_COST_ONLY")) {
			continue
		}
		t.Run(f.name, func(t *testing.T) { measureInputs(t, n, f.run) })
	}
}

// measureInputs runs input n times, each in a subtest of its own as the
// fuzzing engine runs inputs, and logs the time per input.
func measureInputs(t *testing.T, n int, input func(t *testing.T)) {
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	wall, used := time.Now(), cpu()
	for i := range n {
		if !t.Run(strconv.Itoa(i), input) {
			return
		}
	}
	t.Logf("%s: %d inputs: %v wall, %v CPU per input", t.Name(), n, time.Since(wall)/time.Duration(n), (cpu()-used)/time.Duration(n))
}
