package benchhost

import (
	"context"
	"os"
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

func TestWorkspace(t *testing.T) {
	ctx, dir, done, err := Workspace("benchhost-test-")
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("workspace %s: %v", dir, err)
	}
	done()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("workspace %s left behind: %v", dir, err)
	}
	if ctx.Err() == nil {
		t.Error("context not cancelled by done")
	}
}
