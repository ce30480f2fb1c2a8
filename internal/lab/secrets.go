package lab

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
)

// pskPattern finds the secret of every PSK line of an ipsec.secrets file:
// "text", 'text', 0xHEX, 0sBASE64 or a bare word.
var pskPattern = regexp.MustCompile(`(?m):\s*PSK\s+("[^"]*"|'[^']*'|\S+)`)

// secretsOf returns the PSKs of an ipsec.secrets text as raw bytes. Lab
// code stays free of ipsecgw's packages (their in-package tests import the
// lab), hence this small parser of its own.
func secretsOf(text string) [][]byte {
	var out [][]byte
	for _, m := range pskPattern.FindAllStringSubmatch(text, -1) {
		v := m[1]
		var b []byte
		switch {
		case len(v) >= 2 && (v[0] == '"' || v[0] == '\''):
			b = []byte(v[1 : len(v)-1])
		case strings.HasPrefix(v, "0x"):
			b, _ = hex.DecodeString(v[2:])
		case strings.HasPrefix(v, "0s"):
			b, _ = base64.StdEncoding.DecodeString(v[2:])
		default:
			b = []byte(v)
		}
		if len(b) > 0 {
			out = append(out, b)
		}
	}
	return out
}

// proxyPattern finds the credentials of a proxy URL in an ipsecgw.yaml
// (tcp.proxy: http://user:password@host:port).
var proxyPattern = regexp.MustCompile(`(?m)proxy:\s*["']?[a-z0-9]+://([^:@/\s"']+):([^@\s"']+)@`)

// proxySecretsOf returns the proxy passwords of an ipsecgw.yaml text, and
// each "user:password" pair, whose base64 is the Basic credential sent to
// an HTTP proxy: a log must show neither.
func proxySecretsOf(settings string) [][]byte {
	var out [][]byte
	for _, m := range proxyPattern.FindAllStringSubmatch(settings, -1) {
		out = append(out, []byte(m[2]), []byte(m[1]+":"+m[2]))
	}
	return out
}

// minCheckedSecret is the shortest PSK looked for in logs: a shorter one
// would match ordinary text by chance.
const minCheckedSecret = 8

// secretLeaks reports every form of the PSKs (as text, hex in either case,
// base64) that appears in a daemon's log.
func secretLeaks(log string, psks [][]byte) []string {
	var leaks []string
	for _, psk := range psks {
		if len(psk) < minCheckedSecret {
			continue
		}
		h := hex.EncodeToString(psk)
		forms := map[string]string{
			"as text":       string(psk),
			"in hex":        h,
			"in upper hex":  strings.ToUpper(h),
			"in base64":     base64.StdEncoding.EncodeToString(psk),
			"as Go []uint8": fmt.Sprint(psk),
		}
		for how, form := range forms {
			if strings.Contains(log, form) {
				leaks = append(leaks, fmt.Sprintf("a PSK (%d bytes, starting %q) appears %s", len(psk), bytes.Clone(psk[:3]), how))
			}
		}
	}
	return leaks
}

// SecretLeaks checks the output of every ipsecgw daemon started in the lab
// (restarts included) for the PSKs of its ipsec.secrets. New runs it for
// every test at teardown, so the whole interop suite asserts that no log
// line, at the debug level the tests use, reveals a PSK.
func (l *Lab) SecretLeaks() []string {
	l.mu.Lock()
	daemons := append([]*IPsecGW(nil), l.daemons...)
	l.mu.Unlock()
	var out []string
	for _, g := range daemons {
		for _, leak := range secretLeaks(g.Log(), g.psks) {
			out = append(out, fmt.Sprintf("ipsecgw in %s (pid %d): %s", g.Node.Role, g.Proc.PID, leak))
		}
	}
	return out
}
