package config

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// corpusDiagnostics loads one corpus case and returns its diagnostics as
// printed, with the case directory stripped from file names. The warning
// about the secrets file mode is dropped: git does not keep file modes, it
// is tested on its own.
func corpusDiagnostics(t *testing.T, dir string) (*Config, []string) {
	t.Helper()
	secrets := filepath.Join(dir, "ipsec.secrets")
	if _, err := os.Stat(secrets); err != nil {
		secrets = ""
	}
	cfg, diags, err := Load(Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: secrets})
	if (err != nil) != diags.HasErrors() {
		t.Errorf("error %v does not agree with diagnostics", err)
	}
	var got []string
	for _, d := range diags {
		if d.Line == 0 && strings.Contains(d.Msg, "readable by group or others") {
			continue
		}
		if d.Severity == SeverityError && d.Line == 0 {
			t.Errorf("error without a line number: %s", d)
		}
		got = append(got, strings.TrimPrefix(d.String(), dir+string(filepath.Separator)))
	}
	return cfg, got
}

// -update rewrites the expect files from the current output; review the
// diff before committing it.
var update = flag.Bool("update", false, "rewrite testdata/config/*/*/expect")

func readExpect(t *testing.T, dir string, got []string) []string {
	t.Helper()
	if *update {
		text := strings.Join(got, "\n")
		if text != "" {
			text += "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "expect"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "expect"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

func caseDirs(t *testing.T, kind string) []string {
	dirs, err := filepath.Glob(filepath.Join("..", "testdata", "config", kind, "*"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no %s corpus: %v", kind, err)
	}
	return dirs
}

func TestCorpusGood(t *testing.T) {
	for _, dir := range caseDirs(t, "good") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, got := corpusDiagnostics(t, dir)
			if cfg == nil {
				t.Fatalf("good config failed to load:\n%s", strings.Join(got, "\n"))
			}
			if want := readExpect(t, dir, got); !slices.Equal(got, want) {
				t.Errorf("diagnostics:\n got:\n%s\n want:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestCorpusBad(t *testing.T) {
	for _, dir := range caseDirs(t, "bad") {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, got := corpusDiagnostics(t, dir)
			if cfg != nil {
				t.Errorf("bad config loaded")
			}
			if want := readExpect(t, dir, got); !slices.Equal(got, want) {
				t.Errorf("diagnostics:\n got:\n%s\n want:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
