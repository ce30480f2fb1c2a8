package benchhost

import (
	"context"
	"strings"
	"testing"
)

func TestHostFacts(t *testing.T) {
	if la := LoadAvg(); len(strings.Fields(la)) != 3 {
		t.Errorf("LoadAvg %q, want three numbers", la)
	}
	if Info()["cpus"] == "" {
		t.Error("no CPU count")
	}
	v := NewVersions()
	v.Query(context.Background(), "echo", "echo", " 1.2 ")
	v.Query(context.Background(), "missing", "/nonexistent/tool")
	if v["echo"] != "1.2" || v["go"] == "" {
		t.Errorf("versions %v", v)
	}
	if _, ok := v["missing"]; ok {
		t.Error("a failed command was recorded")
	}
}
