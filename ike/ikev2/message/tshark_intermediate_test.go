package message

import (
	"bytes"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestTsharkIntermediate: wireshark dissects an IKE_INTERMEDIATE exchange
// (RFC 9242, exchange type 43) carrying an ML-KEM-768 additional key
// exchange (RFC 9370) as we encode it: given the SA's keys it verifies and
// decrypts both messages and finds a KE payload of method 36 in each.
func TestTsharkIntermediate(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); skipping the wireshark cross-check")
	}
	s := suiteCBC
	x := &exchange{s: s, spii: 0x0a0b0c0d01020304, spir: 0x1122334455667788,
		initAddr: netip.MustParseAddrPort("198.51.100.1:500"), respAddr: netip.MustParseAddrPort("198.51.100.2:500")}
	f := mustPRF(t, s.prf)
	var err2 error
	x.keys, err2 = DeriveIKEKeys(f, s.encr, s.integ, bytes.Repeat([]byte{0x5e}, f.Size()), bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), x.spii, x.spir)
	if err2 != nil {
		t.Fatal(err2)
	}
	outI, inI, err := x.keys.Protectors(s.encr, s.integ, true)
	if err != nil {
		t.Fatal(err)
	}
	outR, inR, err := x.keys.Protectors(s.encr, s.integ, false)
	if err != nil {
		t.Fatal(err)
	}
	kem, err := transform.NewKEM(transform.KEMLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, secret, err := transform.Encapsulate(transform.KEMLKEM768, kem.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	h := Header{SPIi: x.spii, SPIr: x.spir, MajorVersion: 2, Exchange: IKE_INTERMEDIATE, Flags: FlagInitiator, MessageID: 1}
	req, err := AppendEncrypted(nil, h, outI, KE{Group: transform.KEMLKEM768, Data: kem.PublicKey()})
	if err != nil {
		t.Fatal(err)
	}
	h.Flags = FlagResponse
	rsp, err := AppendEncrypted(nil, h, outR, KE{Group: transform.KEMLKEM768, Data: ct})
	if err != nil {
		t.Fatal(err)
	}
	// Our own decoder takes them, and the secrets agree.
	for i, c := range []struct {
		pkt []byte
		in  *transform.Protector
	}{{req, inR}, {rsp, inI}} {
		m, _, err := ParseMessage(append([]byte(nil), c.pkt...))
		if err == nil {
			err = Decrypt(&m, c.in)
		}
		if err == nil {
			err = Validate(&m)
		}
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if got, err := kem.SharedSecret(ct); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("ML-KEM secrets differ: %v", err)
	}
	x.msgs, x.fromInitiator = [][]byte{req, rsp}, []bool{true, false}

	dir := t.TempDir()
	pcap := filepath.Join(dir, "intermediate.pcap")
	writePcap(t, pcap, x)
	conf := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "ikev2_decryption_table"), []byte(decryptionTable(x)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tshark, "-n", "-r", pcap, "-V")
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf, "HOME="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	v := string(out)
	if p := os.Getenv("IKE_TSHARK_DUMP"); p != "" {
		_ = os.WriteFile(p, out, 0o600)
	}
	for _, want := range []string{"Exchange type: Unknown (43)", "Decrypted Data", "[correct]", "Payload: Key Exchange (34)"} {
		if n := strings.Count(v, want); n < 2 {
			t.Errorf("tshark -V shows %q %d times, want 2 (one per message)", want, n)
		}
	}
	// Wireshark 4.0 does not name ML-KEM-768 (36) yet; the KE payloads
	// hold its 1184-byte encapsulation key and 1088-byte ciphertext
	// (FIPS 203), after the 8 bytes of payload and KE headers.
	for _, want := range []string{"DH Group #: Unknown (36)", "Key Exchange Data"} {
		if n := strings.Count(v, want); n != 2 {
			t.Errorf("tshark -V shows %q %d times, want 2", want, n)
		}
	}
	for _, want := range []string{"Payload length: 1192", "Payload length: 1096"} {
		if !strings.Contains(v, want) {
			t.Errorf("tshark -V lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("tshark -V (excerpt):\n%s", excerpt(v, "Next payload: NONE"))
	}
}
