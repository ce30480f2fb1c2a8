package config

import (
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"
)

// memFS is an in-memory file tree for tests and fuzzing.
type memFS struct {
	files map[string]string
	mode  fs.FileMode
}

func (m memFS) ReadFile(name string) ([]byte, error) {
	s, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return []byte(s), nil
}

func (m memFS) Glob(pattern string) ([]string, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, err
	}
	var out []string
	for n := range m.files {
		if ok, _ := path.Match(pattern, n); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (m memFS) Stat(name string) (fs.FileInfo, error) {
	if _, ok := m.files[name]; !ok {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	mode := m.mode
	if mode == 0 {
		mode = 0o600
	}
	return fakeInfo{name: path.Base(name), mode: mode}, nil
}

type fakeInfo struct {
	name string
	mode fs.FileMode
}

func (f fakeInfo) Name() string       { return f.name }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return nil }

// loadMem loads an in-memory ipsec.conf (and ipsec.secrets when secrets is
// not empty).
func loadMem(t testing.TB, conf, secrets string) (*Config, Diagnostics, error) {
	t.Helper()
	files := map[string]string{"/etc/ipsec.conf": conf}
	opts := Options{ConfPath: "/etc/ipsec.conf", fs: memFS{files: files}}
	if secrets != "" {
		files["/etc/ipsec.secrets"] = secrets
		opts.SecretsPath = "/etc/ipsec.secrets"
	}
	return Load(opts)
}

// mustConn loads conf and returns the named conn, failing on errors.
func mustConn(t *testing.T, conf, secrets, name string) Conn {
	t.Helper()
	cfg, diags, err := loadMem(t, conf, secrets)
	if err != nil {
		t.Fatalf("load failed: %v\n%s", err, diagText(diags))
	}
	c, ok := cfg.Conn(name)
	if !ok {
		t.Fatalf("no conn %q in %v", name, cfg.Names())
	}
	return c
}

func diagText(ds Diagnostics) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}
