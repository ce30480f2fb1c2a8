package config

import (
	"strings"
	"testing"
)

// TestTransportModeESPWarns: type=transport without ah= gets a warning at
// its type= line (the dataplane carries transport mode for AH only); with
// ah= it loads without one, in transport mode with the AH proposal.
func TestTransportModeESPWarns(t *testing.T) {
	const conf = "conn esp\n  left=192.0.2.1\n  right=192.0.2.2\n  type=transport\n  auto=add\n" +
		"conn ah\n  left=192.0.2.1\n  right=192.0.2.2\n  type=transport\n  ah=sha256!\n  auto=add\n"
	cfg, diags, err := loadMem(t, conf, "192.0.2.1 192.0.2.2 : PSK \"secret\"\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	var warned []string
	for _, d := range diags {
		if strings.Contains(d.Msg, "transport mode with AH only") {
			warned = append(warned, d.Conn)
			if d.Line != 4 || d.Keyword != "type" {
				t.Errorf("warning at line %d keyword %q, want line 4, type", d.Line, d.Keyword)
			}
		}
	}
	if len(warned) != 1 || warned[0] != "esp" {
		t.Errorf("transport-mode warnings for %v, want for esp only:\n%s", warned, diagText(diags))
	}
	c, ok := cfg.Conn("ah")
	if !ok || c.Mode != ModeTransport || len(c.AH) != 1 {
		t.Errorf("conn ah: mode %v, AH %v", c.Mode, c.AH)
	}
}
