package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary ipsec.conf and ipsec.secrets text to Load: it
// must never panic, every diagnostic about the text must carry a line
// number, a failed load must say why, and the secret must never appear in
// a diagnostic or in the printed view of a conn.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "testdata", "config", "*", "*", "ipsec.conf"))
	for _, s := range seeds {
		conf, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		sec, _ := os.ReadFile(filepath.Join(filepath.Dir(s), "ipsec.secrets"))
		f.Add(string(conf), string(sec))
	}
	f.Add(connBase+"\tike=aes128-sha1;modp1536\n\tleftsubnets={10.0.0.0/8 2001:db8::/32}\n\talso=c\n", `: PSK "k"`)
	f.Add("conn a\n\tleftid=\"x\\\n y\"\n\tinclude=\"#\"\n", "a b : PSK 0sAA==\n  continued\n")
	f.Fuzz(func(t *testing.T, conf, secrets string) {
		const marker = "FUZZ-SECRET-MARKER"
		files := map[string]string{"/etc/ipsec.conf": conf, "/etc/ipsec.secrets": secrets + "\n%any : PSK \"" + marker + "\"\n"}
		cfg, diags, err := Load(Options{ConfPath: "/etc/ipsec.conf", SecretsPath: "/etc/ipsec.secrets", fs: memFS{files: files}})
		if (err != nil) != diags.HasErrors() || (err == nil) != (cfg != nil) {
			t.Fatalf("error %v, config %v, diagnostics %v disagree", err, cfg != nil, diags)
		}
		for _, d := range diags {
			if d.Line <= 0 && d.File == "/etc/ipsec.conf" {
				t.Fatalf("diagnostic without a line number: %s", d)
			}
			if strings.Contains(d.String(), marker) {
				t.Fatalf("diagnostic leaks the secret: %s", d)
			}
			if d.Line > 0 && d.File == "/etc/ipsec.conf" && d.Line > strings.Count(conf, "\n")+1 {
				t.Fatalf("line %d beyond the end of the file: %s", d.Line, d)
			}
		}
		if cfg == nil {
			return
		}
		for _, name := range cfg.Names() {
			v, ok := cfg.View(name)
			if !ok {
				t.Fatalf("conn %q listed but not found", name)
			}
			if strings.Contains(v.Text(), marker) {
				t.Fatal("view leaks the secret")
			}
			c, _ := cfg.Conn(name)
			for _, p := range append(c.IKE, c.ChildProposals()...) {
				if len(p.Transforms) == 0 {
					t.Fatalf("empty proposal in %q", name)
				}
			}
		}
		_ = Diff(cfg, cfg)
	})
}

// FuzzProposals checks that both proposal grammars never panic and that a
// parsed proposal prints back to a string that parses to the same value.
func FuzzProposals(f *testing.F) {
	for _, s := range []string{"aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384!", "aes128-sha1;modp1536",
		"aes-256-sha2+sha1;dh14,3des-md5", "aes_gcm_c-256-null", "chacha20poly1305-x25519-ke1_mlkem768", "default"} {
		f.Add(uint8(1), s)
		f.Add(uint8(3), s)
	}
	f.Fuzz(func(t *testing.T, proto uint8, s string) {
		p := Protocol(proto%3 + 1)
		ps, _, err := ParseProposals(p, s)
		if err != nil {
			return
		}
		var parts []string
		for _, x := range ps {
			parts = append(parts, x.String())
		}
		again, _, err := ParseProposals(p, strings.Join(parts, ","))
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", s, strings.Join(parts, ","), err)
		}
		if !proposalsEqual(ps, again) {
			t.Fatalf("%q: round trip %v != %v", s, ps, again)
		}
	})
}

// BenchmarkParse1000Conns loads a 1,000-conn ipsec.conf with its secrets.
func BenchmarkParse1000Conns(b *testing.B) {
	var conf, secrets strings.Builder
	conf.WriteString("conn %default\n\tkeyexchange=ikev2\n\tdpdaction=restart\n\tikelifetime=28800s\n\tlifetime=3600s\n\n")
	for i := range 1000 {
		conf.WriteString(connText(i))
		conf.WriteString("\trightsubnet=10." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250) + ".0/24,fd00:" + strconv.Itoa(i) + "::/64\n\n")
		secrets.WriteString("198.51.100.1 @site" + strconv.Itoa(i) + ".example.net : PSK \"key-" + strconv.Itoa(i) + "\"\n")
	}
	files := map[string]string{"/etc/ipsec.conf": conf.String(), "/etc/ipsec.secrets": secrets.String()}
	opts := Options{ConfPath: "/etc/ipsec.conf", SecretsPath: "/etc/ipsec.secrets", fs: memFS{files: files}}
	b.SetBytes(int64(conf.Len() + secrets.Len()))
	b.ReportAllocs()
	for b.Loop() {
		cfg, diags, err := Load(opts)
		if err != nil || len(cfg.Names()) != 1000 {
			b.Fatalf("%v\n%s", err, diagText(diags))
		}
	}
}
