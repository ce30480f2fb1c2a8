package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadSecretsMem(t *testing.T, files map[string]string) (*Secrets, Diagnostics) {
	t.Helper()
	return loadSecrets(memFS{files: files}, "/etc/ipsec.secrets")
}

func id(t *testing.T, s string) Identity {
	t.Helper()
	i, err := ParseIdentity(s)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestSecretsMostSpecificMatch(t *testing.T) {
	s, diags := loadSecretsMem(t, map[string]string{"/etc/ipsec.secrets": `
# comments and blank lines are ignored
%any : PSK "catch-all"
198.51.100.1 : PSK "one-id"
198.51.100.1 203.0.113.1 : PSK "pair"
@gw.example.com *@example.com : PSK "wildcard-user"
@gw.example.com ops@example.com : PSK 0x6578616374
%any6 2001:db8::2 : PSK 0sdjY=
include secrets.d/*.secrets
`, "/etc/secrets.d/extra.secrets": `203.0.113.50 : PSK "included"
`})
	if len(diags) != 0 {
		t.Fatalf("diagnostics: %s", diagText(diags))
	}
	tests := []struct{ local, remote, want string }{
		{"198.51.100.1", "203.0.113.1", "pair"},
		{"203.0.113.1", "198.51.100.1", "pair"}, // selectors name either side
		{"198.51.100.1", "203.0.113.9", "one-id"},
		{"198.51.100.7", "203.0.113.9", "catch-all"},
		{"@gw.example.com", "ops@example.com", "exact"},
		{"@gw.example.com", "dev@example.com", "wildcard-user"},
		{"2001:db8::1", "2001:db8::2", "v6"},
		{"198.51.100.7", "203.0.113.50", "included"},
	}
	for _, tt := range tests {
		psk, ok := s.LookupPSK(id(t, tt.local), id(t, tt.remote))
		if !ok || string(psk.Bytes()) != tt.want {
			t.Errorf("%s <-> %s: got %q %v, want %q", tt.local, tt.remote, psk.Bytes(), ok, tt.want)
		}
	}
	// Without a catch-all there is no match for unrelated pairs.
	s, _ = loadSecretsMem(t, map[string]string{"/etc/ipsec.secrets": "198.51.100.1 203.0.113.1 : PSK \"pair\"\n"})
	if _, ok := s.LookupPSK(id(t, "198.51.100.9"), id(t, "203.0.113.9")); ok {
		t.Error("unrelated pair matched")
	}
}

func TestSecretsSyntaxAndErrors(t *testing.T) {
	const secret = "Sup3rS3cret-Value"
	s, diags := loadSecretsMem(t, map[string]string{"/etc/ipsec.secrets": `198.51.100.1 203.0.113.1 : PSK "` + secret + `
198.51.100.2 203.0.113.2 : PSK 0x` + secret + `
198.51.100.3 : PSK 0s` + secret + `!
198.51.100.4 203.0.113.4 PSK "` + secret + `"
198.51.100.5 : FOO "` + secret + `"
@bad@name : PSK "` + secret + `"
2001:db8::1 2001:db8::2 : PSK '` + secret + `'
198.51.100.6 :
  PSK "continued-` + secret + `"
: RSA gw.key
include missing.secrets
`})
	if s.Len() != 3 {
		t.Errorf("%d entries, want 3 (v6 PSK, continued PSK, RSA)", s.Len())
	}
	text := diagText(diags)
	for _, want := range []string{
		"ipsec.secrets:1: error: PSK: unterminated quoted secret",
		"ipsec.secrets:2: error: PSK: the 0x secret is not valid hex",
		"ipsec.secrets:3: error: PSK: the 0s secret is not valid base64",
		"ipsec.secrets:4: error: expected",
		"ipsec.secrets:5: error: unknown secret type",
		"ipsec.secrets:6: error: selector:",
		"ipsec.secrets:10: warning: RSA key /etc/ipsec.d/private/gw.key not loaded: file does not exist",
		"ipsec.secrets:11: error: include ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, secret) || strings.Contains(text, "S3cret") {
		t.Errorf("a diagnostic leaks the secret:\n%s", text)
	}
	if psk, ok := s.LookupPSK(id(t, "198.51.100.6"), id(t, "203.0.113.77")); !ok || string(psk.Bytes()) != "continued-"+secret {
		t.Errorf("continuation line: %v", ok)
	}
}

func TestPSKNeverPrinted(t *testing.T) {
	const secret = "do-not-print-me"
	p := PSK{b: []byte(secret)}
	type holder struct {
		Key PSK
		Ptr *PSK
	}
	h := holder{Key: p, Ptr: &p}
	j, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	outputs := []string{fmt.Sprint(p), fmt.Sprintf("%v %+v %#v %s %q", p, h, h, p, p), string(j), fmt.Sprintf("%v", []PSK{p})}
	s := &Secrets{entries: []secretEntry{{kind: "PSK", psk: p}}}
	outputs = append(outputs, s.String(), fmt.Sprintf("%v %+v %#v", s, s, s.entries))
	for _, o := range outputs {
		if strings.Contains(o, secret) {
			t.Errorf("secret printed: %s", o)
		}
	}
	if !p.Equal(PSK{b: []byte(secret)}) || p.Equal(PSK{b: []byte("other")}) || p.Len() != len(secret) {
		t.Error("Equal/Len")
	}
}

func TestSecretsFileModeWarning(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	sec := filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(conf, []byte(connBase), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o640, 0o644} {
		if err := os.WriteFile(sec, []byte(anyPSK), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(sec, mode); err != nil {
			t.Fatal(err)
		}
		_, diags, err := Load(Options{ConfPath: conf, SecretsPath: sec})
		if err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(diagText(diags), "readable by group or others")
		if warned != (mode != 0o600) {
			t.Errorf("mode %o: warned=%v", mode, warned)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		in   string
		typ  IDType
		text string
	}{
		{"198.51.100.1", IDIPv4, "198.51.100.1"},
		{"2001:db8::1", IDIPv6, "2001:db8::1"},
		{"@gw.example.com", IDFQDN, "@gw.example.com"},
		{"gw.example.com", IDFQDN, "@gw.example.com"},
		{"@@ops@example.com", IDRFC822, "ops@example.com"},
		{"ops@example.com", IDRFC822, "ops@example.com"},
		{"@#00ff", IDKeyID, "@#00ff"},
		{"keyid:#abcd", IDKeyID, "@#abcd"},
		{"fqdn:gw.example.com", IDFQDN, "@gw.example.com"},
		{"dns:gw.example.com", IDFQDN, "@gw.example.com"},
		{"email:a@b.c", IDRFC822, "a@b.c"},
		{"userfqdn:a@b.c", IDRFC822, "a@b.c"},
		{"ipv4:198.51.100.1", IDIPv4, "198.51.100.1"},
		{"ipv6:2001:db8::1", IDIPv6, "2001:db8::1"},
		{"C=CH, O=strongSwan, CN=gw", IDDERASN1DN, "C=CH, O=strongSwan, CN=gw"},
		{"asn1dn:CN=gw", IDDERASN1DN, "CN=gw"},
		{"%any", IDAny, "%any"},
		{"%any6", IDAny, "%any"},
	}
	for _, tt := range tests {
		got, err := ParseIdentity(tt.in)
		if err != nil || got.Type != tt.typ || got.String() != tt.text {
			t.Errorf("%q: %v %q %v", tt.in, got.Type, got.String(), err)
		}
	}
	for _, bad := range []string{"", "@", "@#zz", "@@nouser", "ipv4:2001:db8::1", "ipv6:1.2.3.4", "fe80::1%eth0"} {
		if _, err := ParseIdentity(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
