package tun

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestTUNTCPStreamOffloads plays the far end of a TCP connection from
// userspace, behind the TUN. The kernel's sender, seeing a TSO-capable
// device, hands over super-packets that Read must split (several segments
// in one batch); our replies are written as one batch of consecutive
// segments that Write coalesces (GRO) and the kernel must deliver as an
// intact byte stream.
func TestTUNTCPStreamOffloads(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	if dev.BatchSize() == 1 {
		t.Skip("TUN has no virtio-net offloads on this kernel")
	}

	const (
		upload   = 256 << 10 // client -> far end
		download = 60 << 10  // far end -> client, one written batch
		mss      = 1400
	)
	up := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz012345"), upload/32)
	down := bytes.Repeat([]byte("ZYXWVUTSRQPONMLKJIHGFEDCBA987654"), download/32)

	clientErr := make(chan error, 1)
	go func() {
		var c net.Conn
		var err error
		if nerr := inNSErr(ns, func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("10.99.0.1")}, Timeout: 10 * time.Second}
			c, err = d.Dial("tcp4", "10.98.0.5:8080")
		}); nerr != nil {
			clientErr <- nerr
			return
		}
		if err != nil {
			clientErr <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write(up); err != nil {
			clientErr <- err
			return
		}
		got := make([]byte, download)
		if _, err := io.ReadFull(c, got); err != nil {
			clientErr <- err
			return
		}
		if !bytes.Equal(got, down) {
			clientErr <- io.ErrUnexpectedEOF
			return
		}
		clientErr <- nil
	}()

	far := net.ParseIP("10.98.0.5")
	near := net.ParseIP("10.99.0.1")
	var clientPort layers.TCPPort
	var farSeq, clientNext uint32 = 1_000_000, 0
	segment := func(flags func(*layers.TCP), payload []byte) []byte {
		ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP, SrcIP: far, DstIP: near}
		tcp := &layers.TCP{SrcPort: 8080, DstPort: clientPort, Seq: farSeq, Ack: clientNext, Window: 65535, ACK: true}
		flags(tcp)
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		pkt := serialize(t, ip, tcp, gopacket.Payload(payload))
		b := make([]byte, Headroom+MaxPacketSize+Tailroom)
		return b[:Headroom+copy(b[Headroom:], pkt)]
	}
	write := func(bufs ...[]byte) {
		if _, err := dev.Write(bufs, Headroom); err != nil {
			t.Fatal(err)
		}
	}

	bufs, sizes := newBufs(dev.BatchSize(), Headroom+dev.MTU()+Tailroom)
	decodeTCP := func(p []byte) *layers.TCP {
		if len(p) == 0 || p[0]>>4 != 4 {
			return nil
		}
		pk := gopacket.NewPacket(p, layers.LayerTypeIPv4, gopacket.NoCopy)
		tcp, _ := pk.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tcp == nil || tcp.DstPort != 8080 {
			return nil
		}
		return tcp
	}

	// Handshake.
	syn, _ := readUntil(t, dev, bufs, sizes, func(p []byte) bool {
		tcp := decodeTCP(p)
		return tcp != nil && tcp.SYN && !tcp.ACK
	})
	synTCP := decodeTCP(syn)
	clientPort = synTCP.SrcPort
	clientNext = synTCP.Seq + 1
	write(segment(func(tcp *layers.TCP) {
		tcp.SYN = true
		tcp.Options = []layers.TCPOption{
			{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{mss >> 8, mss & 0xff}},
			{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}},
		}
	}, nil))
	farSeq++

	// Receive the upload, acknowledging as we go.
	received := make([]byte, 0, upload)
	maxBatch := 0
	for len(received) < upload {
		_, _ = readUntil(t, dev, bufs, sizes, func(p []byte) bool {
			tcp := decodeTCP(p)
			return tcp != nil && len(tcp.Payload) > 0
		})
		// readUntil returned the batch it matched in bufs/sizes; walk it
		// in order (Read returns one split super-packet per call).
		inBatch := 0
		for i := 0; i < len(bufs) && sizes[i] > 0; i++ {
			tcp := decodeTCP(bufs[i][Headroom : Headroom+sizes[i]])
			if tcp == nil || len(tcp.Payload) == 0 {
				continue
			}
			inBatch++
			if tcp.Seq == clientNext {
				received = append(received, tcp.Payload...)
				clientNext += uint32(len(tcp.Payload))
			}
		}
		clear(sizes)
		maxBatch = max(maxBatch, inBatch)
		write(segment(func(*layers.TCP) {}, nil))
	}
	if !bytes.Equal(received, up) {
		t.Fatal("uploaded stream corrupted")
	}
	t.Logf("upload: %d bytes, up to %d segments from one Read", len(received), maxBatch)
	if maxBatch < 2 {
		t.Fatal("no Read returned more than one segment: TSO super-packets are not being split")
	}

	// Download: one Write of consecutive segments.
	var batch [][]byte
	for off := 0; off < download; off += mss {
		end := min(off+mss, download)
		batch = append(batch, segment(func(tcp *layers.TCP) { tcp.PSH = end == download }, down[off:end]))
		farSeq += uint32(end - off)
	}
	before := rxPackets(t, dev)
	write(batch...)
	if got := rxPackets(t, dev) - before; got >= uint64(len(batch)) {
		t.Fatalf("%d segments written as %d packets: GRO did not coalesce", len(batch), got)
	} else {
		t.Logf("download: %d segments written as %d coalesced packets", len(batch), got)
	}
	if err := <-clientErr; err != nil {
		t.Fatalf("client: %v", err)
	}
}
