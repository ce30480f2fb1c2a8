package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEveryUsedKeywordIsExercised guards the promise that each keyword
// ipsecgw acts upon appears in a test: in TestConnKeywords or in a corpus
// config whose expected output is checked.
func TestEveryUsedKeywordIsExercised(t *testing.T) {
	var text strings.Builder
	for _, pattern := range []string{"conn_test.go", "parse_test.go", "cert_test.go", "routed_test.go", "../testdata/config/*/*/ipsec.conf", "../testdata/config/*/*/conf.d/*.conf"} {
		files, _ := filepath.Glob(pattern)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			text.Write(b)
		}
	}
	all := text.String()
	var used []string
	for k, kw := range connKeywords {
		if kw.action == kwUsed {
			used = append(used, k)
		}
	}
	for k, kw := range endKeywords {
		if kw.action == kwUsed {
			used = append(used, "left"+k, "right"+k)
		}
	}
	for _, k := range used {
		re := regexp.MustCompile(`(^|[\s"]|\\t)` + regexp.QuoteMeta(k) + `\s*=`)
		if !re.MatchString(all) {
			t.Errorf("keyword %s is not used by any test", k)
		}
	}
}
