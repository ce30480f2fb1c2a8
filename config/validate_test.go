package config

import (
	"strings"
	"testing"
)

// Whole-conn checks: each case names the diagnostic it must produce.
func TestValidateConn(t *testing.T) {
	tests := []struct {
		conf string
		sev  Severity
		msg  string
	}{
		{"conn c\n\tauthby=secret\n\tauto=add\n", SeverityError, "neither left= nor right= is set"},
		{connBase + "\tright=%any\n\tauto=start\n", SeverityWarning, "auto=start needs a remote address"},
		{connBase + "\tlifetime=5s\n", SeverityError, "lifetime below the minimum of 10s"},
		{connBase + "\tikelifetime=5s\n", SeverityError, "lifetime below the minimum of 10s"},
		{connBase + "\tlifetime=5m\n\tmargintime=10m\n", SeverityWarning, "margintime (10m0s) is not below lifetime (5m0s)"},
		{connBase + "\tikelifetime=5m\n\tmargintime=6m\n\tlifetime=1h\n", SeverityWarning, "is not below ikelifetime"},
		{connBase + "\tkeyexchange=ikev1\n\tdpdaction=restart\n\tdpddelay=60s\n\tdpdtimeout=30s\n", SeverityWarning, "dpdtimeout (30s) is shorter than dpddelay (1m0s)"},
		{connBase + "\tauthby=pubkey\n", SeverityWarning, "authby=pubkey needs our certificate: set leftcert="},
		{connBase + "\tauthby=pubkey\n\tkeyexchange=ikev1\n", SeverityWarning, "certificate authentication is supported with IKEv2 only"},
		{connBase + "\tleftauth=eap\n", SeverityWarning, "authentication eap/psk is not supported yet"},
		{connBase + "\tike=aes256-sha384-x25519-ke1_mlkem768\n", SeverityError, "additional key exchanges (ke1_ ... ke7_) need IKEv2 only; set keyexchange=ikev2 (this conn is ike)"},
		{connBase + "\tkeyexchange=ikev2\n\tike=aes256-sha384-x25519-ke1_mlkem768-ke2_none\n", 0, ""},
		{connBase + "\tkeyexchange=ikev2\n\tike=aes256-sha384-mlkem768\n", SeverityError, "unsupported algorithm(s) mlkem768; ipsecgw supports AES-CBC/CTR/GCM, ChaCha20-Poly1305, 3DES, MD5, SHA-1, SHA-2, AES-XCBC, MODP 768-8192, ECP 256/384/521, X25519 and X448 (ML-KEM only as an additional key exchange after a classic one: x25519-ke1_mlkem768)"},
		{connBase + "\tkeyexchange=ikev2\n\tesp=aes256gcm16-x25519-ke1_mlkem768\n", 0, ""},
		{connBase + "\tkeyexchange=ikev2\n\tesp=aes256gcm16-x25519-ke1_mlkem768-ke2_mlkem1024\n", 0, ""},
		{connBase + "\tesp=aes256gcm16-x25519-ke1_mlkem768\n", SeverityError, "additional key exchanges (ke1_ ... ke7_) need IKEv2 only; set keyexchange=ikev2 (this conn is ike)"},
		{connBase + "\tkeyexchange=ikev2\n\tesp=aes256gcm16-mlkem768\n", SeverityError, "unsupported algorithm(s) mlkem768"},
		{connBase + "\ttype=passthrough\n", SeverityWarning, "type=passthrough is not supported yet"},
		{connBase + "\ttype=reject\n", SeverityWarning, "type=reject is handled as drop"},
		{connBase + "\taggressive=yes\n\tkeyexchange=ikev2\n", SeverityWarning, "aggressive mode exists only in IKEv1"},
		{connBase + "\tleftsubnet=10.0.0.0/8\n\trightsubnet=10.1.0.0/16[tcp]\n", SeverityError, "overlaps remote subnet"},
		{connBase + "\tleftsubnet=0.0.0.0/0\n\trightsubnet=10.1.0.0/16\n", 0, ""},
		{connBase + "\tleftsubnet=10.0.0.0/8[tcp]\n\trightsubnet=10.1.0.0/16[udp]\n", 0, ""},
		{connBase + "\tleftsubnet=10.1.0.0/16,10.1.0.0/16\n", SeverityWarning, "subnet 10.1.0.0/16 is listed twice"},
		{connBase + "\tleft=198.51.100.1,198.51.100.2\n", SeverityWarning, "several addresses given"},
		{connBase + "\tleft=300.1.1\n", SeverityError, "is neither an IP address nor a host name"},
		{connBase + "\tleftsubnet=10.0.0.0/8\n\tleftsubnets={10.1.0.0/16}\n", SeverityError, "cannot both be set"},
		{connBase + "\tesp=aes128-sha1\n\tphase2alg=aes256-sha1\n", SeverityWarning, "phase2alg= wins"},
		{connBase + "\tesp=aes128-sha1\n\tah=sha1\n", SeverityWarning, "esp= proposals are not used"},
		{connBase + "\tphase2=gre\n", SeverityError, "expected esp or ah"},
		{connBase + "\tpfsgroup=sha1\n", SeverityError, "is not a DH group"},
		{connBase + "\tesn=maybe\n", SeverityError, "expected yes, no or either"},
		{connBase + "\tleftprotoport=bogus/1\n", SeverityError, "unknown protocol"},
		{connBase + "\tleftprotoport=tcp/90-80\n", SeverityError, "bad port range"},
		{connBase + "\trightsubnet=10.1.0.0/16[tcp/80\n", SeverityError, "missing ]"},
		{connBase + "\trightsubnet=fe80::/64%eth0\n", SeverityError, "not a subnet"},
		{connBase + "\tleftauth=cert\n", SeverityError, "expected psk, pubkey"},
		{connBase + "\tright=%opportunistic\n", SeverityError, "unsupported special value"},
	}
	for _, tt := range tests {
		_, diags, _ := loadMem(t, tt.conf, anyPSK)
		if tt.msg == "" {
			if len(diags) != 0 {
				t.Errorf("%q: unexpected %s", tt.conf, diagText(diags))
			}
			continue
		}
		found := false
		for _, d := range diags {
			if d.Severity == tt.sev && strings.Contains(d.Msg, tt.msg) && d.Line > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: want %s %q, got:\n%s", tt.conf, tt.sev, tt.msg, diagText(diags))
		}
	}
}
