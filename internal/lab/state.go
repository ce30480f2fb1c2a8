package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateRoot is where every lab records what it created, one directory per
// lab. It lives on /run (a tmpfs) so a reboot clears it together with the
// namespaces it describes.
const StateRoot = "/run/ipsecgw-lab"

// Prefix starts the name of every namespace a lab creates, so leftovers can
// be recognised (and only ours are ever touched).
const Prefix = "isgw-"

// procRecord identifies a process across PID reuse: the PID alone could
// name an unrelated process by the time a stale lab is cleaned, so the
// kernel start time (field 22 of /proc/PID/stat) is recorded with it.
type procRecord struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Name  string `json:"name"`
}

// labState is the on-disk record of one lab: enough for a later run to
// undo everything if the owner died without cleaning up.
type labState struct {
	ID      string       `json:"id"`
	Owner   procRecord   `json:"owner"`
	Netns   []string     `json:"netns"`
	Procs   []procRecord `json:"procs"`
	Created time.Time    `json:"created"`
}

// procStatFields returns the fields of /proc/PID/stat from field 3
// (state) on. The command name (field 2) may contain spaces and
// parentheses, so fields are counted from the last ')'.
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("short /proc/%d/stat", pid)
	}
	return f, nil
}

// procStart returns the start time of pid in clock ticks since boot
// (field 22).
func procStart(pid int) (uint64, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// procState returns the one-letter state of pid ("Z" for a zombie).
func procState(pid int) string {
	f, err := procStatFields(pid)
	if err != nil {
		return ""
	}
	return f[0]
}

// ProcCPU returns the CPU time pid has used so far, user and system
// (fields 14 and 15, in the kernel's fixed 100 ticks a second).
func ProcCPU(pid int) (time.Duration, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	var ticks uint64
	for _, s := range f[11:13] {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// alive reports whether the recorded process still runs (and is the same
// process: same PID and same start time). A zombie counts as dead.
func (p procRecord) alive() bool {
	st, err := procStart(p.PID)
	if err != nil || st != p.Start {
		return false
	}
	return procState(p.PID) != "Z"
}

func selfRecord() procRecord {
	st, _ := procStart(os.Getpid())
	return procRecord{PID: os.Getpid(), Start: st, Name: filepath.Base(os.Args[0])}
}

func writeState(dir string, st *labState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	// Write then rename so a concurrent stale scan never reads half a file.
	tmp := filepath.Join(dir, "state.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "state.json"))
}

func readState(dir string) (*labState, error) {
	b, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return nil, err
	}
	var st labState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &st, nil
}

// killRecorded ends a recorded process if (and only if) it is still the
// same process: SIGTERM, a short grace period, then SIGKILL.
func killRecorded(p procRecord, grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	for range 100 {
		if !p.alive() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("process %d (%s) survived SIGKILL", p.PID, p.Name)
}

// netnsExists reports whether a named namespace is registered with ip netns.
func netnsExists(name string) bool {
	_, err := os.Stat(filepath.Join("/run/netns", name))
	return err == nil
}

func deleteNetns(name string) error {
	if !netnsExists(name) {
		return nil
	}
	out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput()
	if err != nil && netnsExists(name) {
		return fmt.Errorf("ip netns delete %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// teardownState undoes what a state record describes: processes first (a
// namespace with live processes would linger), then namespaces (which takes
// their veth ends with them), then the directory.
func teardownState(dir string, st *labState) error {
	var errs []error
	for i := len(st.Procs) - 1; i >= 0; i-- {
		if err := killRecorded(st.Procs[i], 2*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(st.Netns) - 1; i >= 0; i-- {
		if err := deleteNetns(st.Netns[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// CleanStale removes every lab whose owner process is dead: labs left by a
// test binary that was killed (go test -timeout, SIGKILL, a crash). Labs of
// live owners, for example another test package running at the same time,
// are left alone. Only recorded PIDs (checked against their start time)
// are killed, never processes found by name.
func CleanStale() error {
	ents, err := os.ReadDir(StateRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(StateRoot, e.Name())
		st, err := readState(dir)
		if errors.Is(err, os.ErrNotExist) {
			// A lab being created writes its state first thing; a
			// directory without one that is not brand new was abandoned
			// before anything was created.
			if info, ierr := os.Stat(dir); ierr == nil && time.Since(info.ModTime()) > time.Minute {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if st.Owner.alive() {
			continue
		}
		if err := teardownState(dir, st); err != nil {
			errs = append(errs, fmt.Errorf("stale lab %s: %w", st.ID, err))
		}
	}
	return errors.Join(errs...)
}
