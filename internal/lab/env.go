package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireEnv names the environment variable that turns "skip" into "fail":
// CI sets it so that a missing tool can never silently disable interop tests.
const RequireEnv = "IPSECGW_REQUIRE_INTEROP"

// CharonPath is the strongSwan IKE daemon started for each instance.
const CharonPath = "/usr/lib/ipsec/charon"

// baseTools are needed by every lab.
var baseTools = []string{"ip", "unshare", "sh", "mount", "sysctl", "nft", "ping"}

// Missing returns a description of what this machine lacks to run a lab
// with the given extra tools, or "" when everything is there.
func Missing(tools ...string) string {
	var miss []string
	if os.Geteuid() != 0 {
		miss = append(miss, "root privileges (network namespaces)")
	}
	if _, err := os.Stat(CharonPath); err != nil {
		miss = append(miss, CharonPath+" (strongswan-charon)")
	}
	for _, t := range append(append([]string{"swanctl"}, baseTools...), tools...) {
		if _, err := exec.LookPath(t); err != nil {
			miss = append(miss, t)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		miss = append(miss, "/dev/net/tun (kernel-libipsec)")
	}
	if len(miss) == 0 {
		return ""
	}
	return strings.Join(miss, ", ")
}

// Require skips the test when the lab cannot run here, or fails it when
// IPSECGW_REQUIRE_INTEROP=1.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	fail, msg := decide(Missing(tools...), os.Getenv(RequireEnv))
	switch {
	case msg == "":
	case fail:
		t.Fatal(msg)
	default:
		t.Skip(msg)
	}
}

// decide turns what is missing into skip or fail: skipping is the polite
// default on a developer machine, failing is what CI asks for.
func decide(missing, requireEnv string) (fail bool, msg string) {
	if missing == "" {
		return false, ""
	}
	msg = fmt.Sprintf("strongSwan interop lab unavailable, missing: %s", missing)
	if requireEnv == "1" {
		return true, fmt.Sprintf("%s (%s=1 forbids skipping)", msg, RequireEnv)
	}
	return false, fmt.Sprintf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}
