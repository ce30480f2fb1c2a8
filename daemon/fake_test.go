package daemon

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// fakeIKE answers Status with fixed entries and records Up/Down.
type fakeIKE struct {
	keys   []ike.IKEKeys
	status []ike.ConnStatus
	ups    []string
}

func (f *fakeIKE) Start() {}

func (f *fakeIKE) HandlePacket(local, remote netip.AddrPort, pkt []byte)  {}
func (f *fakeIKE) ProcessPacket(local, remote netip.AddrPort, pkt []byte) {}

func (f *fakeIKE) Up(name string) error { f.ups = append(f.ups, "up "+name); return nil }

func (f *fakeIKE) Down(name string) error { f.ups = append(f.ups, "down "+name); return nil }

func (f *fakeIKE) Acquire(name string) {}

func (f *fakeIKE) Status() []ike.ConnStatus { return f.status }

func (f *fakeIKE) Close(ctx context.Context) error { return nil }

func (f *fakeIKE) ReloadConfig(cfg *config.Config) { f.ups = append(f.ups, "reload") }

func (f *fakeIKE) Subscribe(...func(ike.Event) bool) *ike.Subscription { return nil }

func (f *fakeIKE) Counters() ike.Counters { return ike.Counters{} }

func (f *fakeIKE) RekeyChild(uint32, bool) bool { return false }

func (f *fakeIKE) PeerMovedESP(uint32, netip.AddrPort) bool { return false }

func (f *fakeIKE) ReportInvalidSPI(netip.Addr, uint32) {}

func (f *fakeIKE) Probe(context.Context) error { return nil }

func (f *fakeIKE) ExportKeys(context.Context) []ike.IKEKeys { return f.keys }

const testConf = `config setup

conn %default
	keyexchange=ikev2
	authby=secret
	left=198.51.100.1
	leftsubnet=10.1.0.0/24

conn up
	right=198.51.100.2
	rightsubnet=10.2.0.0/24
	ike=aes128-sha256-modp2048!
	esp=aes128gcm16!
	auto=start

conn idle
	right=%any
	rightsubnet=10.3.0.0/24
	auto=add
`

func loadTestConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(conf, []byte(testConf), 0o644)
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: conf, SecretsPath: secrets,
		LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	if cfg == nil {
		t.Fatalf("config: %v %v", err, diags)
	}
	return cfg
}

// testChild is an AES-GCM CHILD SA between the test's subnets.
func testChild(conn string, reqID, in, out uint32) ike.ChildSA {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 20) } // AES-128 key + 4-byte salt
	return ike.ChildSA{
		Conn: conn, ReqID: reqID, InSPI: in, OutSPI: out, Mode: config.ModeTunnel,
		Encr:      transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128},
		Integ:     transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone},
		InEncrKey: key(1), OutEncrKey: key(2),
		Local: netip.MustParseAddrPort("198.51.100.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.2:4500"),
		Encap:        true,
		LocalTS:      []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/24"))},
		RemoteTS:     []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.2.0.0/24"))},
		ReplayWindow: -1,
	}
}
