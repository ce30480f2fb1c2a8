package ike

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// BenchmarkHostileInput: what one hostile datagram costs the IKE side
// of the daemon, by kind, from spoofed sources: the CPU time of the whole
// process (every goroutine the datagram reaches, from getrusage) per
// datagram as cpu-ns/op, beside the caller's ns/op and allocations. The
// interop hostile campaign measures the same from outside
// (TestHostileTraffic's CPU column); this isolates the Manager.
func BenchmarkHostileInput(b *testing.B) {
	ecpInit := initRequest(b, 1)
	kinds := []struct {
		name string
		gen  func(rng *rand.Rand, i int) []byte
	}{
		{"garbage", func(rng *rand.Rand, i int) []byte { return randomBytes(rng, 1+rng.IntN(400)) }},
		{"unknown-spi", func(rng *rand.Rand, i int) []byte {
			h := message.Header{SPIi: rng.Uint64(), SPIr: rng.Uint64() | 1, MajorVersion: 2, Exchange: message.INFORMATIONAL, Flags: message.FlagInitiator}
			return message.AppendMessage(nil, h, message.RawPayload{Type: message.PayloadSK, Body: randomBytes(rng, 80)})
		}},
		{"critical-init", func(rng *rand.Rand, i int) []byte {
			h := message.Header{SPIi: rng.Uint64() | 1, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}
			return message.AppendMessage(nil, h, message.RawPayload{Type: message.PayloadType(100 + rng.IntN(100)), Critical: true, Body: randomBytes(rng, 16)})
		}},
		{"init-flood", func(rng *rand.Rand, i int) []byte {
			pkt := append([]byte(nil), ecpInit...)
			binary.BigEndian.PutUint64(pkt, rng.Uint64()|1) // a fresh initiator SPI
			return pkt
		}},
	}
	for _, k := range kinds {
		b.Run(k.name, func(b *testing.B) {
			var answers atomic.Int64
			_, cb := confPair("net", "", "ike=aes128-sha256-ecp256!")
			m, err := NewManager(Options{Config: loadConfig(b, cb, secrets, addrB),
				Send:      func(_, _ netip.AddrPort, pkt []byte) error { answers.Add(1); return nil },
				Installer: newFakeInstaller(0), Clock: newFakeClock(), LocalAddrs: []netip.Addr{addrB}, Logger: discardLogger})
			if err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				m.Close(ctx)
			}()
			rng := rand.New(rand.NewPCG(1, 2))
			pkts := make([][]byte, 1024)
			for i := range pkts {
				pkts[i] = k.gen(rng, i)
			}
			local := netip.AddrPortFrom(addrB, 500)
			before := cpuTime()
			b.ResetTimer()
			for i := range b.N {
				// 65,536 spoofed sources in 198.18.0.0/15.
				src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 500)
				m.HandlePacket(local, src, pkts[i%len(pkts)])
			}
			// Let what the datagrams queued finish before reading the CPU
			// time: the SA loops run on their own goroutines.
			time.Sleep(50 * time.Millisecond)
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(answers.Load())/float64(b.N), "answers/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
