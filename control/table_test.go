package control

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleStatus()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"NAME", "net-net", "established", "aes128-sha256-modp2048", "42s",
		"esp aes128gcm16  spi in c1a2b3c4 out c5d6e7f8", "10.1.0.0/24 === 10.2.0.0/24", "in 8.2KiB 100 pkts", "up 42s",
		"wrong-psk", "phase1-failed", "AUTHENTICATION_FAILED", "road", "down",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "\n"); n != 5 {
		t.Errorf("table has %d lines, want 5 (header, 3 conns, 1 child):\n%s", n, out)
	}
}

// TestWriteTableShowsNAT: an IKE SA through a NAT is marked in the table.
func TestWriteTableShowsNAT(t *testing.T) {
	conns := sampleStatus()
	var b1, b2 strings.Builder
	if err := WriteTable(&b1, conns); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b1.String(), "(NAT)") {
		t.Fatalf("NAT shown without one:\n%s", b1.String())
	}
	for i := range conns {
		if conns[i].IKE != nil {
			conns[i].IKE.NATDetected = true
		}
	}
	if err := WriteTable(&b2, conns); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b2.String(), "(NAT)") {
		t.Errorf("NAT not shown:\n%s", b2.String())
	}
}

func TestWriteGlobal(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteGlobal(&buf, GlobalStatus{IKESAs: 4, HalfOpen: 3, HalfOpenLimit: 10000, CookieThreshold: 30, CookieThresholdIP: 3,
		CookiesSent: 12, HalfOpenRefused: 2, IKEQueueDrops: 1, IKESAQueueDrops: 5,
		Drops: map[string]uint64{"half_open_limit": 2, "queue_full": 5, "unknown_spi": 40, "malformed": 0}}); err != nil {
		t.Fatal(err)
	}
	want := "IKE: 4 SAs, 3/10000 half-open; cookies from 30 half-open or 3 per address: 12 sent; 2 refused at the half-open limit; queue drops 1 (sockets) 5 (IKE SAs)\n" +
		"IKE drops: half_open_limit=2 queue_full=5 unknown_spi=40\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	if err := WriteGlobal(&buf, GlobalStatus{HalfOpenLimit: 5}); err != nil || !strings.Contains(buf.String(), "cookies off") {
		t.Errorf("cookies off: %q %v", buf.String(), err)
	}
}

// TestWriteTableShowsUpdownFailure: a failed updown script shows in the
// LAST ERROR column, after the conn's own last error.
func TestWriteTableShowsUpdownFailure(t *testing.T) {
	conns := sampleStatus()
	conns[0].Updown.LastError = "updown script up-client failed: exit status 2"
	conns[1].Updown = &UpdownStatus{Script: "/x", Runs: 1, Failures: 1, LastError: "updown script down-client timed out"}
	var b strings.Builder
	if err := WriteTable(&b, conns); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if !strings.HasSuffix(lines[1], "  updown script up-client failed: exit status 2") {
		t.Errorf("net-net line: %q", lines[1])
	}
	if !strings.Contains(lines[3], "check the PSK for ID 198.51.100.3; updown script down-client timed out") {
		t.Errorf("wrong-psk line: %q", lines[3])
	}
}
