package metrics

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPrometheusOnlyHere: no other package of the module imports the
// Prometheus client directly; they reach it through this package (the
// daemon, which starts the endpoint, and what builds on it).
func TestPrometheusOnlyHere(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the imports with")
	}
	const module = "github.com/ipsecgw/ipsecgw"
	out, err := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		pkg, imports, _ := strings.Cut(strings.TrimSpace(line), " ")
		checked++
		if pkg == module+"/metrics" {
			continue
		}
		for imp := range strings.FieldsSeq(imports) {
			if strings.HasPrefix(imp, "github.com/prometheus/") {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
	if checked < 10 {
		t.Fatalf("go list listed %d packages:\n%s", checked, out)
	}
}
