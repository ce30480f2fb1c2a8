package config

import (
	"slices"
	"strings"
	"testing"
)

const diffBase = `conn a
	left=198.51.100.1
	right=203.0.113.1
	leftsubnet=10.1.0.0/16
	rightsubnet=10.2.0.0/16
	authby=secret
	auto=start

conn b
	left=198.51.100.1
	right=203.0.113.2
	authby=secret
	auto=add
`

func TestDiff(t *testing.T) {
	secrets := "198.51.100.1 203.0.113.1 : PSK \"a\"\n198.51.100.1 203.0.113.2 : PSK \"b\"\n"
	load := func(conf, sec string) *Config {
		cfg, diags, err := loadMem(t, conf, sec)
		if err != nil {
			t.Fatalf("%v\n%s", err, diagText(diags))
		}
		return cfg
	}
	old := load(diffBase, secrets)
	if d := Diff(old, load(diffBase, secrets)); len(d) != 0 {
		t.Errorf("identical configs differ: %v", d)
	}
	tests := []struct {
		name          string
		conf, secrets string
		want          []ConnChange
	}{
		{"lifetime", strings.Replace(diffBase, "auto=start", "auto=start\n\tlifetime=30m\n\tdpddelay=10s", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactRekey, Fields: []string{"lifetime", "dpd"}}}},
		{"subnet", strings.Replace(diffBase, "10.2.0.0/16", "10.2.0.0/16,10.3.0.0/16", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactNewChild, Fields: []string{"remote subnets"}}}},
		{"esp", strings.Replace(diffBase, "auto=start", "auto=start\n\tesp=aes256gcm16", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactNewChild, Fields: []string{"esp"}}}},
		{"ike and peer", strings.Replace(diffBase, "right=203.0.113.2", "right=203.0.113.3\n\tike=aes256-sha256-modp2048", 1),
			strings.Replace(secrets, "203.0.113.2", "203.0.113.3", 1),
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNewIKE, Fields: []string{"remote", "ike", "remote subnets"}}}},
		{"psk", diffBase, strings.Replace(secrets, `"b"`, `"s3cr3t-changed"`, 1),
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNewIKE, Fields: []string{"psk"}}}},
		{"auto only", strings.Replace(diffBase, "auto=add", "auto=start", 1), secrets,
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNone, Fields: []string{"auto"}}}},
		{"added and removed", strings.Replace(diffBase, "conn b", "conn c", 1), secrets,
			[]ConnChange{{Name: "b", Kind: ConnRemoved}, {Name: "c", Kind: ConnAdded}}},
	}
	for _, tt := range tests {
		got := Diff(old, load(tt.conf, tt.secrets))
		if !slices.EqualFunc(got, tt.want, func(a, b ConnChange) bool {
			return a.Name == b.Name && a.Kind == b.Kind && a.Impact == b.Impact && slices.Equal(a.Fields, b.Fields)
		}) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		for _, c := range got {
			if strings.Contains(c.String(), "s3cr3t") {
				t.Errorf("diff output shows the PSK: %s", c)
			}
		}
	}
}
