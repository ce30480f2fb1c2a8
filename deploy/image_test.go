package deploy

import (
	"debug/elf"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// TestContainerImage builds the image with `make container` (buildah, offline
// from the static binary) and checks what a runtime would start: the config
// (non-root user, entrypoint, ports) and the root filesystem (nothing but the
// static binary, passwd/group and the socket directory owned by the user).
// podman cannot start containers on these machines, so the binary is run
// from the image's mounted root as uid 65532 instead; interop's container
// conditions test runs the tunnel under the same user and capabilities.
func TestContainerImage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("buildah needs root here")
	}
	buildah := need(t, "buildah")
	image := "localhost/ipsecgw:deploy-test"
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(buildah, args...).Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(string(out))
	}
	make := exec.Command("make", "-C", "..", "container", "IMAGE="+image)
	if out, err := make.CombinedOutput(); err != nil {
		t.Fatalf("make container: %v\n%s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command(buildah, "rmi", "-f", image).Run() })

	var inspect struct {
		OCIv1 struct {
			Config struct {
				User         string
				Entrypoint   []string
				Cmd          []string
				ExposedPorts map[string]struct{}
			} `json:"config"`
		}
	}
	if err := json.Unmarshal([]byte(run("inspect", "--type", "image", image)), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != "65532:65532" {
		t.Errorf("image user %q, want 65532:65532", cfg.User)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/ipsecgw"}) || len(cfg.Cmd) == 0 || cfg.Cmd[0] != "run" {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	for _, port := range []string{"500/udp", "4500/udp", "9108/tcp"} {
		if _, ok := cfg.ExposedPorts[port]; !ok {
			t.Errorf("port %s not exposed (%v)", port, cfg.ExposedPorts)
		}
	}

	ctr := run("from", image)
	t.Cleanup(func() { _ = exec.Command(buildah, "rm", ctr).Run() })
	root := run("mount", ctr)
	t.Cleanup(func() { _ = exec.Command(buildah, "umount", ctr).Run() })

	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	if want := []string{"etc/group", "etc/passwd", "ipsecgw"}; !slices.Equal(files, want) {
		t.Errorf("image files %q, want only %q", files, want)
	}
	st, err := os.Stat(filepath.Join(root, "run/ipsecgw"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); !st.IsDir() || sys.Uid != 65532 || sys.Gid != 65532 {
		t.Errorf("/run/ipsecgw: dir %v owner %d:%d, want a directory owned by 65532:65532", st.IsDir(), sys.Uid, sys.Gid)
	}

	bin := filepath.Join(root, "ipsecgw")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader; a FROM scratch image has none")
		}
	}
	// The image's binary, run as its user with no capabilities.
	out, err := exec.Command("setpriv", "--reuid", "65532", "--regid", "65532", "--clear-groups",
		"--inh-caps", "-all", bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ipsecgw") {
		t.Errorf("the image's binary as uid 65532: %v\n%s", err, out)
	}
}
