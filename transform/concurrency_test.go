package transform

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// TestConcurrentSealOpen uses one Protector from several goroutines, as
// parallel ESP workers do; run with -race to check the pooled per-call state
// and the AEADs' key expansion on first use, which these goroutines race to.
func TestConcurrentSealOpen(t *testing.T) {
	for _, s := range []suite{
		{enc(EncrAESGCM16, 256), integ(IntegNone)},
		{enc(EncrAESGCM8, 128), integ(IntegNone)},
		{enc(EncrChaCha20Poly1305, 0), integ(IntegNone)},
		{enc(EncrAESCBC, 128), integ(IntegHMACSHA2_256_128)},
		{enc(EncrAESCTR, 256), integ(IntegAESXCBC96)},
	} {
		t.Run(s.String(), func(t *testing.T) {
			p := newSuite(t, s)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 200; i++ {
						seq := uint64(w)<<32 | uint64(i)
						payload := fill(100+w, byte(i))
						pkt := espPacket(p, payload, seq)
						var a [12]byte
						var tr [4]byte
						aad, trailer := espArgs(pkt, seq, true, &a, &tr)
						if err := p.Seal(pkt, 8, aad, trailer); err != nil {
							errs <- err
							return
						}
						if err := p.Open(pkt, 8, aad, trailer); err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(pkt[8+p.IVSize():8+p.IVSize()+len(payload)], payload) {
							errs <- errors.New("payload mismatch")
							return
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestPRFSumNoAlloc checks prf+ building blocks do not allocate once keyed.
func TestPRFSumNoAlloc(t *testing.T) {
	for _, tr := range Supported(TypePRF) {
		p, _ := NewPRF(tr.ID)
		m := p.New(fill(p.KeySize(), 1))
		data := fill(100, 2)
		out := make([]byte, 0, 64)
		if n := testing.AllocsPerRun(100, func() {
			m.Reset()
			m.Write(data)
			out = m.Sum(out[:0])
		}); n != 0 {
			t.Errorf("%v: %v allocations per keyed computation", tr, n)
		}
	}
}
