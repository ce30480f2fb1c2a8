package lab

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Capture is a running packet capture (tcpdump, which starts in a fraction
// of tshark's time) writing a pcap file; read it with Count or Fields,
// which use tshark's dissectors and display filters.
type Capture struct {
	Node  *Node
	Iface string
	File  string
	Proc  *Process
}

// StartCapture captures on iface in the node's namespace, with an optional
// BPF filter, and returns once tcpdump is listening so that no packet sent
// afterwards is missed.
func (n *Node) StartCapture(ctx context.Context, iface, bpf string) (*Capture, error) {
	n.Lab.mu.Lock()
	n.Lab.seq++
	file := filepath.Join(n.Lab.Dir, fmt.Sprintf("%02d-%s-%s.pcap", n.Lab.seq, n.Role, iface))
	n.Lab.mu.Unlock()
	// --immediate-mode: without it packets wait in a TPACKET_V3 block and
	// the last ones are lost when tcpdump is stopped.
	argv := []string{"tcpdump", "-i", iface, "-n", "-U", "--immediate-mode", "-s", "256", "-w", file}
	if bpf != "" {
		argv = append(argv, bpf)
	}
	p, err := n.Start("tcpdump-"+iface, argv...)
	if err != nil {
		return nil, err
	}
	c := &Capture{Node: n, Iface: iface, File: file, Proc: p}
	for !strings.Contains(p.Output(), "listening on") {
		select {
		case <-p.Done():
			return nil, fmt.Errorf("tcpdump on %s/%s exited: %s", n.Role, iface, strings.TrimSpace(p.Output()))
		case <-ctx.Done():
			_ = p.Stop(syscall.SIGINT, time.Second)
			return nil, fmt.Errorf("tcpdump on %s/%s not ready: %w", n.Role, iface, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return c, nil
}

// CaptureFor captures on iface for d and returns the finished capture.
func (n *Node) CaptureFor(ctx context.Context, iface, bpf string, d time.Duration) (*Capture, error) {
	c, err := n.StartCapture(ctx, iface, bpf)
	if err != nil {
		return nil, err
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	return c, c.Stop()
}

// Stop ends the capture; SIGINT makes tcpdump flush and close the file.
func (c *Capture) Stop() error { return c.Proc.Stop(syscall.SIGINT, 3*time.Second) }

// Fields runs tshark over the capture with a display filter and returns
// one line per matching packet with the requested fields, tab-separated.
func (c *Capture) Fields(ctx context.Context, filter string, fields ...string) ([]string, error) {
	return ReadPcap(ctx, c.File, filter, fields...)
}

// Count returns how many packets of the capture match a tshark display
// filter, e.g. "udp.port == 4500 && esp".
func (c *Capture) Count(ctx context.Context, filter string) (int, error) {
	lines, err := c.Fields(ctx, filter, "frame.number")
	return len(lines), err
}

// ReadPcap runs tshark on a pcap file (from any source) and returns the
// requested fields of packets matching the display filter.
func ReadPcap(ctx context.Context, file, filter string, fields ...string) ([]string, error) {
	if len(fields) == 0 {
		fields = []string{"frame.number"}
	}
	args := []string{"-n", "-r", file, "-T", "fields"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.CommandContext(ctx, "tshark", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := output(cmd)
	if err != nil {
		return nil, fmt.Errorf("tshark -r %s -Y %q: %w: %s", filepath.Base(file), filter, err, strings.TrimSpace(stderr.String()))
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
