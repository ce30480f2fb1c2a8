package shared

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// SALogger writes the same line as log.With(key, spi) would.
func TestSALoggerMatchesWith(t *testing.T) {
	var a, b bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
		if at.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return at
	}}
	la := slog.New(slog.NewTextHandler(&a, opts)).With("node", "A")
	lb := slog.New(slog.NewTextHandler(&b, opts)).With("node", "A")
	la.With("ike_spi", "00000000000004d2").Info("IKE SA established", "conn", "x", "nat", false)
	SALogger(lb, "ike_spi", 1234).Info("IKE SA established", "conn", "x", "nat", false)
	if a.String() != b.String() {
		t.Fatalf("With: %q\nSALogger: %q", a.String(), b.String())
	}
	b.Reset()
	SALogger(lb, "ike_spi", 1234).Debug("not enabled")
	if b.Len() != 0 || !strings.Contains(a.String(), "ike_spi=00000000000004d2 conn=x") {
		t.Fatalf("debug written or attribute misplaced: %q %q", b.String(), a.String())
	}
}

// An SALog embedded in an SA logs as SALogger does, and sets up without
// allocating.
func TestSALogMatchesSALogger(t *testing.T) {
	var a, b bytes.Buffer
	la := slog.New(slog.NewTextHandler(&a, nil)).With("node", "A")
	lb := slog.New(slog.NewTextHandler(&b, nil)).With("node", "A")
	var l SALog
	if n := testing.AllocsPerRun(10, func() { l.Init(lb, "ike_spi", 1234) }); n != 0 {
		t.Errorf("SALog.Init allocates %.0f times", n)
	}
	SALogger(la, "ike_spi", 1234).Info("rekeying CHILD SA", "conn", "x")
	l.Init(lb, "ike_spi", 1234).Info("rekeying CHILD SA", "conn", "x")
	cut := func(s string) string { return s[strings.Index(s, " level="):] } // the times differ
	if cut(a.String()) != cut(b.String()) {
		t.Fatalf("SALogger: %q\nSALog: %q", a.String(), b.String())
	}
}
