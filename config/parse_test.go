package config

import (
	"strings"
	"testing"
)

func TestParseLexical(t *testing.T) {
	conf := "# comment\n" +
		"config setup\n" +
		"\tcharondebug=\"ike 2,  knl 1\"   # trailing comment\n" +
		"\tplutodebgu=all\n" +
		"\n" +
		"ca corp\n" +
		"\tcacert=corp.pem\n" +
		"\tauto=add\n" +
		"conn c\n" +
		"  left = 198.51.100.1\n" +
		"\tright=203.0.113.1 # the peer\n" +
		"\tleftid=\"C=CH,  O=Example\\\n" +
		" Corp, CN=gw\"\n" +
		"\trightid=@#beef\n" +
		"\tauthby=secret\n" +
		"\tauto=add\r\n"
	cfg, diags, err := loadMem(t, conf, `: PSK "k"`)
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	want := []string{
		`/etc/ipsec.conf:4: warning: plutodebgu: unknown config setup keyword, ignored (did you mean "plutodebug"?)`,
		`/etc/ipsec.conf:6: warning: conn "ca corp": ca sections are accepted but not used yet (ipsecgw authenticates with pre-shared keys)`,
	}
	if got := strings.TrimSpace(diagText(diags)); got != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	c, _ := cfg.Conn("c")
	if c.Local.ID != (Identity{Type: IDDERASN1DN, Value: "C=CH,  O=Example Corp, CN=gw"}) || c.Remote.ID.Value != "beef" || c.Remote.Host != "203.0.113.1" {
		t.Errorf("values: %q %q %q", c.Local.ID.Value, c.Remote.ID.Value, c.Remote.Host)
	}
}

func TestIncludeRelativeAndNested(t *testing.T) {
	files := map[string]string{
		"/etc/ipsec.conf":              "include ipsec.d/*.conf\nconn %default\n\tauthby=secret\n",
		"/etc/ipsec.d/a.conf":          "conn a\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauto=add\ninclude sub/b.inc\n",
		"/etc/ipsec.d/sub/b.inc":       "conn b\n\talso=a\n\tright=203.0.113.2\n",
		"/etc/ipsec.d/ignored.notconf": "garbage",
		"/etc/ipsec.secrets":           `: PSK "k"`,
	}
	cfg, diags, err := Load(Options{ConfPath: "/etc/ipsec.conf", SecretsPath: "/etc/ipsec.secrets", fs: memFS{files: files}})
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	if names := strings.Join(cfg.Names(), ","); names != "a,b" {
		t.Errorf("conns %s", names)
	}
	b, _ := cfg.Conn("b")
	if b.Remote.Host != "203.0.113.2" || b.Local.Host != "198.51.100.1" || b.Auto != AutoAdd || !b.UsesPSK() || b.File != "/etc/ipsec.d/sub/b.inc" {
		t.Errorf("b: %+v", b)
	}
	if files := cfg.Files(); len(files) != 3 {
		t.Errorf("files %v", files)
	}
}
