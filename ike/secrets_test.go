package ike

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestKeysNeverLogged: through a whole life (setup, CHILD rekey, IKE
// rekey, delete) at the debug level, neither the PSK nor any ESP key of
// either side appears in the log, in any of the forms a careless log call
// would produce (text, hex, base64, a Go byte slice).
func TestKeysNeverLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs lockedBuffer
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nikelifetime=60m\nreauth=no"
		ca, cb := confPair("net", extra, extra)
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{logs: &logs})
		var keys [][]byte
		capture := func() {
			for _, n := range []*node{a, b} {
				for _, sa := range n.inst.all() {
					for _, k := range [][]byte{sa.InEncrKey, sa.InIntegKey, sa.OutEncrKey, sa.OutIntegKey} {
						if len(k) > 0 {
							keys = append(keys, bytes.Clone(k))
						}
					}
				}
			}
		}
		if err := a.m.Up("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		capture()
		clk.advance(16*time.Minute, synctest.Wait) // CHILD rekey at 15 min
		capture()
		clk.advance(45*time.Minute, synctest.Wait) // IKE rekey at 55 min
		capture()
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		closeAll(t, synctest.Wait, a, b)

		log := logs.String()
		if !strings.Contains(log, "CHILD") || len(keys) < 8 {
			t.Fatalf("the test saw too little: %d bytes of log, %d keys", len(log), len(keys))
		}
		if strings.Contains(log, "correct horse battery staple") {
			t.Error("the PSK appears in the log")
		}
		for _, k := range keys {
			for how, form := range map[string]string{"hex": hex.EncodeToString(k), "upper hex": strings.ToUpper(hex.EncodeToString(k)),
				"base64": base64.StdEncoding.EncodeToString(k), "Go slice": fmt.Sprint(k), "raw": string(k)} {
				if strings.Contains(log, form) {
					t.Errorf("a %d-byte ESP key appears in the log (%s)", len(k), how)
				}
			}
		}
	})
}
