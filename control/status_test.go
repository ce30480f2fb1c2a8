package control

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sampleStatus() []ConnStatus {
	return []ConnStatus{
		{
			Name: "net-net", State: StateEstablished, Auto: "start", Version: "ikev2",
			Local: "198.51.100.1", Remote: "198.51.100.2",
			IKE: &IKEStatus{
				Initiator: true, InitiatorSPI: FormatIKESPI(0x1f2e3d4c5b6a7988), ResponderSPI: FormatIKESPI(0x8877665544332211),
				Proposal: "aes128-sha256-modp2048", LocalID: "198.51.100.1", RemoteID: "198.51.100.2", UptimeSeconds: 42,
			},
			Children: []ChildStatus{{
				Proposal: "aes128gcm16", Protocol: "esp", SPIIn: FormatSPI(0xc1a2b3c4), SPIOut: FormatSPI(0xc5d6e7f8),
				UDPEncap: true, LocalTS: []string{"10.1.0.0/24"}, RemoteTS: []string{"10.2.0.0/24"},
				BytesIn: 8400, PacketsIn: 100, BytesOut: 8400, PacketsOut: 100, UptimeSeconds: 42,
			}},
			Usage:     Usage{BytesIn: 1250400, PacketsIn: 14886, BytesOut: 1250400, PacketsOut: 14886, LastInboundSeconds: 1},
			Updown:    &UpdownStatus{Script: "/etc/ipsec.d/updown.sh", Runs: 1, LastVerb: "up-client"},
			Health:    Health{LastInboundSeconds: 1, DPD: DPDOK, DPDDelaySeconds: 30, LastDPDSeconds: 12, LastDPDRTTMillis: 0.84},
			Bandwidth: Bandwidth{InBytesPerSecond: 16800, OutBytesPerSecond: 16800, IntervalSeconds: 5},
		},
		{
			Name: "wrong-psk", State: StatePhase1Failed, Auto: "start", Version: "ikev2",
			Local: "198.51.100.1", Remote: "198.51.100.3",
			LastError: "peer 198.51.100.3 answered AUTHENTICATION_FAILED: check the PSK for ID 198.51.100.3",
			Children:  []ChildStatus{},
			Usage:     Usage{LastInboundSeconds: -1},
			Health:    Health{LastInboundSeconds: -1, DPD: DPDTimeout, DPDDelaySeconds: 30, LastDPDSeconds: 95, LastDPDRTTMillis: -1},
		},
		{Name: "road", State: StateDown, Auto: "add", Version: "ike", Local: "198.51.100.1", Remote: "%any", Children: []ChildStatus{},
			Usage:  Usage{LastInboundSeconds: -1},
			Health: Health{LastInboundSeconds: -1, DPD: DPDOff, LastDPDSeconds: -1, LastDPDRTTMillis: -1}},
	}
}

// TestStatusJSONGolden pins the JSON schema of ConnStatus: renaming or
// dropping a key breaks scripts that parse `ipsecgw status --json`.
func TestStatusJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sampleStatus()); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "status.golden.json")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("status JSON changed (run with -update only if the change is intended and documented):\n%s", buf.String())
	}
}

// TestGlobalStatusSchema pins the keys of the global section (documented
// in the README): every key is present even when zero.
func TestGlobalStatusSchema(t *testing.T) {
	b, err := json.Marshal(GlobalStatus{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"cookie_threshold", "cookie_threshold_ip", "cookies_sent", "drops", "half_open", "half_open_limit",
		"half_open_refused", "ike_queue_drops", "ike_sa_queue_drops", "ike_sas"}
	if !slices.Equal(keys, want) {
		t.Errorf("global keys %v, want %v", keys, want)
	}
}
