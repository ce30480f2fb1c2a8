package lab

import (
	"fmt"
	"strings"
	"testing"
)

func TestSecretsOf(t *testing.T) {
	text := `# comment
1.2.3.4 5.6.7.8 : PSK "quoted secret"
@a @b : PSK 'single quoted'
%any : PSK 0x6c61622d746573742d70736b
x : PSK 0sYmFzZTY0LXNlY3JldA==
y : PSK bareword-secret
z : RSA key.pem
`
	var got []string
	for _, b := range secretsOf(text) {
		got = append(got, string(b))
	}
	want := []string{"quoted secret", "single quoted", "lab-test-psk", "base64-secret", "bareword-secret"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("secretsOf = %q, want %q", got, want)
	}
}

func TestSecretLeaks(t *testing.T) {
	psk := []byte("lab-test-psk-0123456789")
	clean := "level=INFO msg=\"IKE SA established\" conn=s2s psk=<redacted>\n"
	if leaks := secretLeaks(clean, [][]byte{psk}); len(leaks) != 0 {
		t.Errorf("a clean log reported: %v", leaks)
	}
	for _, form := range []string{string(psk), "6c61622d746573742d70736b2d30313233343536373839", "6C61622D746573742D70736B2D30313233343536373839",
		"bGFiLXRlc3QtcHNrLTAxMjM0NTY3ODk=", fmt.Sprint(psk)} {
		log := clean + "level=DEBUG msg=auth key=" + form + "\n"
		if leaks := secretLeaks(log, [][]byte{psk}); len(leaks) != 1 {
			t.Errorf("PSK as %q: %d leaks reported, want 1", form, len(leaks))
		}
	}
	if leaks := secretLeaks("short", [][]byte{[]byte("short")}); len(leaks) != 0 {
		t.Errorf("a PSK shorter than %d bytes is looked for: %v", minCheckedSecret, leaks)
	}
	if !strings.Contains(strings.Join(secretLeaks(string(psk), [][]byte{psk}), ""), "as text") {
		t.Error("the leak does not say in which form the PSK appeared")
	}
}

func TestProxySecretsOf(t *testing.T) {
	settings := "tun:\n  name: isgw0\ntcp:\n  proxy: http://alice:proxy-pass-123@10.9.0.1:8888\n"
	got := proxySecretsOf(settings)
	if len(got) != 2 || string(got[0]) != "proxy-pass-123" || string(got[1]) != "alice:proxy-pass-123" {
		t.Fatalf("proxySecretsOf = %q", got)
	}
	// The Basic credential an HTTP proxy receives is a leak too.
	log := "level=DEBUG msg=dial header=\"Proxy-Authorization: Basic YWxpY2U6cHJveHktcGFzcy0xMjM=\"\n"
	if leaks := secretLeaks(log, got); len(leaks) == 0 {
		t.Fatal("the Basic credential in a log is not reported")
	}
	if got := proxySecretsOf("tcp:\n  proxy: socks5://10.9.0.1:1080\n"); len(got) != 0 {
		t.Fatalf("a proxy without credentials yields %q", got)
	}
}
