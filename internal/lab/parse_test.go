package lab

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseListSAs(t *testing.T) {
	b, err := os.ReadFile("testdata/list-sas-pretty.txt")
	if err != nil {
		t.Fatal(err)
	}
	sas, err := ParseListSAs(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 2 {
		t.Fatalf("got %d IKE SAs, want 2", len(sas))
	}
	s := sas[0]
	if s.Name != "s2s" || s.Version != 2 || s.State != "ESTABLISHED" || s.LocalPort != 4500 ||
		s.RemoteHost != "198.51.100.1" || !s.NATRemote || s.NATLocal || s.Initiator {
		t.Errorf("IKE SA fields: %+v", s)
	}
	if got, want := s.Proposal(), "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"; got != want {
		t.Errorf("IKE proposal %q, want %q", got, want)
	}
	ch, ok := s.Child("net")
	if !ok {
		t.Fatal("child net missing")
	}
	want := ChildSA{Name: "net", UniqueID: "1", ReqID: "1", State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP",
		Encap: true, SPIIn: "34e7787a", SPIOut: "f6537de6", EncrAlg: "AES_GCM_16", EncrKeysize: 128,
		BytesIn: 840, PacketsIn: 10, BytesOut: 1680, PacketsOut: 20,
		LocalTS: []string{"10.2.0.0/24"}, RemoteTS: []string{"10.1.0.0/24"}}
	ch.Raw = nil
	if !reflect.DeepEqual(ch, want) {
		t.Errorf("child:\n got %+v\nwant %+v", ch, want)
	}
	if ch.Proposal() != "AES_GCM_16-128" {
		t.Errorf("child proposal %q", ch.Proposal())
	}
	v1 := sas[1]
	if v1.Version != 1 || v1.State != "CONNECTING" || v1.LocalID != "C=CH, O=strongSwan, CN=gw2" || !v1.Initiator || len(v1.Children) != 0 {
		t.Errorf("second IKE SA: %+v", v1)
	}
	if sas, err := ParseListSAs("list-sas reply {\n}\n"); err != nil || len(sas) != 0 {
		t.Errorf("empty listing: %v %v", sas, err)
	}
}

func TestParseListSAsMalformed(t *testing.T) {
	for _, in := range []string{
		"list-sa event {\n",
		"}\n",
		"list-sa event {\n  a {\n    local-ts = [\n",
		"list-sa event {\n  a {\n    what is this\n  }\n}\n",
		"list-sa event {\n  a {\n    version = two\n  }\n}\n",
		"list-sa event {\n  a {\n    child-sas {\n      c {\n        bytes-in = -1\n      }\n    }\n  }\n}\n",
	} {
		if _, err := ParseListSAs(in); err == nil {
			t.Errorf("accepted malformed input %q", in)
		}
	}
}

func TestParseIperfJSON(t *testing.T) {
	r, err := ParseIperfJSON([]byte(`{"start":{},"intervals":[{"streams":[],"sum":{"start":0,"end":0.5,"bits_per_second":4.6e8}},{"sum":{"start":0.5,"end":1.0001,"bits_per_second":4.4e8}}],"end":{"sum_sent":{"seconds":1.0001,"bytes":1,"bits_per_second":4.5e8,"retransmits":12},"sum_received":{"bits_per_second":4.4e8}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.SentBitsPerSecond != 4.5e8 || r.ReceivedBitsPerSecond != 4.4e8 || r.Retransmits != 12 || r.Seconds != 1.0001 {
		t.Errorf("parsed %+v", r)
	}
	if want := []IperfInterval{{0, 0.5, 4.6e8}, {0.5, 1.0001, 4.4e8}}; !slices.Equal(r.Intervals, want) {
		t.Errorf("intervals %+v, want %+v", r.Intervals, want)
	}
	if _, err := ParseIperfJSON([]byte(`{"error":"unable to connect to server: Connection refused"}`)); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("iperf3 error not reported: %v", err)
	}
	if _, err := ParseIperfJSON([]byte("iperf3: error")); err == nil {
		t.Error("non-JSON accepted")
	}
}

func TestRequireDecision(t *testing.T) {
	if fail, msg := decide("", "1"); fail || msg != "" {
		t.Errorf("nothing missing: fail=%v msg=%q", fail, msg)
	}
	if fail, msg := decide("swanctl", ""); fail || !strings.Contains(msg, "swanctl") {
		t.Errorf("missing without %s: fail=%v msg=%q, want skip naming swanctl", RequireEnv, fail, msg)
	}
	if fail, msg := decide("swanctl", "1"); !fail || !strings.Contains(msg, RequireEnv) {
		t.Errorf("missing with %s=1: fail=%v msg=%q, want failure", RequireEnv, fail, msg)
	}
}

func TestSwanctlConfRendering(t *testing.T) {
	c := Conn{Version: 1, LocalAddr: "198.51.100.1", RemoteAddr: "198.51.100.2", LocalID: "gw1", RemoteID: "gw2",
		PSK: "s\"e cret\n", IKEProposals: "aes128-sha1-modp1024", ESPProposals: "aes128-sha1",
		LocalTS: "10.1.0.0/24", RemoteTS: "10.2.0.0/24"}
	conf := SwanctlConf(c)
	for _, want := range []string{"version = 1", "proposals = aes128-sha1-modp1024", "esp_proposals = aes128-sha1",
		"local_ts = 10.1.0.0/24", "secret = 0x73226520637265740a", "id-1 = gw1"} {
		if !strings.Contains(conf, want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, conf)
		}
	}
	c.Auth, c.LocalCert = "pubkey", "gw1.pem"
	conf = SwanctlConf(c)
	for _, want := range []string{"auth = pubkey\n      certs = gw1.pem\n      id = gw1", "remote {\n      auth = pubkey"} {
		if !strings.Contains(conf, want) {
			t.Errorf("swanctl.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "secret =") {
		t.Errorf("a pubkey conn got a PSK secret:\n%s", conf)
	}
	e := &CharonError{Op: "x", Err: os.ErrNotExist, Logs: []InstanceLog{{Instance: "gw1", Lines: []string{"a", "b"}}}}
	if got := e.Error(); !strings.Contains(got, "--- charon gw1 log ---\na\nb") {
		t.Errorf("CharonError text %q", got)
	}
}

// TestProcCPU: the test's own CPU time grows while it burns CPU (by
// 50 ms within 20 s of wall time, however loaded the machine).
func TestProcCPU(t *testing.T) {
	pid := os.Getpid()
	before, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for x := 0; ; x++ {
		now, err := ProcCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		if now-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time grew by %v in 20 s of busy loop (%d turns)", now-before, x)
		}
	}
	if _, err := ProcCPU(-1); err == nil {
		t.Error("no error for pid -1")
	}
}
