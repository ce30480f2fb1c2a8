package config

import (
	"crypto"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// PSK is a pre-shared key. Its String, GoString and JSON forms are masked
// so that it cannot leak into logs, errors or output by accident.
type PSK struct{ b []byte }

// Bytes returns a copy of the key.
func (p PSK) Bytes() []byte { return append([]byte(nil), p.b...) }

// Len is the key length in bytes.
func (p PSK) Len() int { return len(p.b) }

// Equal compares two keys in constant time.
func (p PSK) Equal(q PSK) bool { return subtle.ConstantTimeCompare(p.b, q.b) == 1 }

func (p PSK) String() string { return "<redacted>" }

// GoString keeps %#v from printing the bytes.
func (p PSK) GoString() string { return "config.PSK{<redacted>}" }

// MarshalJSON masks the key.
func (p PSK) MarshalJSON() ([]byte, error) { return []byte(`"<redacted>"`), nil }

// MarshalText masks the key (used by encoders other than JSON).
func (p PSK) MarshalText() ([]byte, error) { return []byte("<redacted>"), nil }

type secretEntry struct {
	ids  []Identity
	kind string // PSK, RSA, EAP ...
	psk  PSK
	key  crypto.Signer // RSA, ECDSA, PKCS8: the loaded private key
	file string
	line int
}

// Secrets holds the entries of ipsec.secrets. PSK entries and the private
// keys of RSA, ECDSA and PKCS8 entries are used.
type Secrets struct {
	entries []secretEntry
	// byID indexes PSK entries by the exact identities they name; generic
	// lists those with %any or wildcard selectors, which any pair may match.
	// Built lazily, so that lookups for a thousand conns stay linear.
	index   sync.Once
	byID    map[string][]int
	generic []int
}

func idKey(id Identity) string {
	switch id.Type {
	case IDIPv4, IDIPv6:
		return "ip:" + id.Addr.String()
	case IDFQDN, IDRFC822:
		return strconv.Itoa(int(id.Type)) + ":" + strings.ToLower(id.Value)
	}
	return strconv.Itoa(int(id.Type)) + ":" + id.Value
}

func (s *Secrets) buildIndex() {
	s.byID = map[string][]int{}
	for i, e := range s.entries {
		if e.kind != "PSK" {
			continue
		}
		generic := len(e.ids) <= 1 // none, or one plus the implicit %any
		for _, id := range e.ids {
			if id.Type == IDAny || strings.HasPrefix(id.Value, "*") {
				generic = true
			} else {
				s.byID[idKey(id)] = append(s.byID[idKey(id)], i)
			}
		}
		if generic {
			s.generic = append(s.generic, i)
		}
	}
}

// candidates lists, in file order, the entries that can match the pair.
func (s *Secrets) candidates(local, remote Identity) []int {
	s.index.Do(s.buildIndex)
	if local.Type == IDAny || remote.Type == IDAny {
		// %any is matched by every selector.
		all := make([]int, len(s.entries))
		for i := range all {
			all[i] = i
		}
		return all
	}
	// A non-generic entry matches only if it names both IDs, so the
	// shorter of the two lists is enough.
	named := s.byID[idKey(local)]
	if r := s.byID[idKey(remote)]; len(r) < len(named) {
		named = r
	}
	c := append(slices.Clone(s.generic), named...)
	slices.Sort(c)
	return slices.Compact(c)
}

// Len returns the number of entries.
func (s *Secrets) Len() int { return len(s.entries) }

func (s *Secrets) String() string { return fmt.Sprintf("%d secrets", len(s.entries)) }

// LookupPSK finds the PSK for a pair of IDs with strongSwan's rule: each
// entry's selectors are matched against the local and the remote ID (an
// entry with no selector stands for %any, one with a single selector for
// that ID and %any); both sides must match, and the entry with the best
// sum of match levels (exact beats wildcard beats %any) wins, the first in
// file order on a tie.
func (s *Secrets) LookupPSK(local, remote Identity) (PSK, bool) {
	e, _ := s.lookup(local, remote)
	if e == nil {
		return PSK{}, false
	}
	return PSK{b: append([]byte(nil), e.psk.b...)}, true
}

// lookup returns the winning entry and whether one of its selectors names
// one of the two IDs (rather than matching through %any only).
func (s *Secrets) lookup(local, remote Identity) (*secretEntry, bool) {
	var best *secretEntry
	bestScore, bestSpecific := 0, false
	for _, i := range s.candidates(local, remote) {
		e := &s.entries[i]
		if e.kind != "PSK" {
			continue
		}
		ids := e.ids
		if len(ids) == 0 {
			ids = []Identity{{Type: IDAny}}
		} else if len(ids) == 1 {
			ids = []Identity{ids[0], {Type: IDAny}}
		}
		me, other := 0, 0
		for _, id := range ids {
			me = max(me, matchLevel(id, local))
			other = max(other, matchLevel(id, remote))
		}
		if me == 0 || other == 0 {
			continue
		}
		if score := me + other; score > bestScore {
			best, bestScore = e, score
			bestSpecific = me > 1 || other > 1 || len(e.ids) == 0 || allAny(e.ids)
		}
	}
	return best, bestSpecific
}

func allAny(ids []Identity) bool {
	for _, id := range ids {
		if id.Type != IDAny {
			return false
		}
	}
	return true
}

var secretKinds = map[string]bool{"PSK": true, "RSA": true, "ECDSA": true, "BLISS": true, "PKCS8": true, "P12": true,
	"EAP": true, "NTLM": true, "XAUTH": true, "PIN": true, "PPK": true}

// loadSecrets reads an ipsec.secrets file and its includes.
func loadSecrets(fsys fileSystem, path string) (*Secrets, Diagnostics) {
	l := &secretsLoader{fs: fsys, s: &Secrets{}, ipsecDir: IPsecDir(path)}
	l.file(path, "", 0, 0)
	return l.s, l.diags
}

type secretsLoader struct {
	fs       fileSystem
	ipsecDir string // relative key files are in its private/
	s        *Secrets
	diags    Diagnostics
	files    int
}

func (l *secretsLoader) errf(file string, line int, format string, args ...any) {
	l.diags = append(l.diags, Diagnostic{File: file, Line: line, Severity: SeverityError, Msg: fmt.Sprintf(format, args...)})
}

func (l *secretsLoader) file(path, from string, fromLine, depth int) {
	if depth > MaxIncludeDepth {
		l.errf(from, fromLine, "includes nested deeper than %d levels", MaxIncludeDepth)
		return
	}
	if l.files++; l.files > MaxFiles {
		l.errf(from, fromLine, "more than %d files included", MaxFiles)
		return
	}
	data, err := l.fs.ReadFile(path)
	if err != nil {
		if from == "" {
			// A missing ipsec.secrets is fine for conns that need no PSK;
			// the conns that do get their own error.
			l.diags = append(l.diags, Diagnostic{File: path, Severity: SeverityWarning, Msg: fmt.Sprintf("cannot read secrets: %v", unwrapPathError(err))})
		} else {
			l.errf(from, fromLine, "include %s: %v", path, unwrapPathError(err))
		}
		return
	}
	if fi, err := l.fs.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		l.diags = append(l.diags, Diagnostic{File: path, Severity: SeverityWarning,
			Msg: fmt.Sprintf("secrets file is readable by group or others (mode %04o); run chmod 600 %s", fi.Mode().Perm(), path)})
	}
	if len(data) > MaxFileSize {
		l.errf(path, 1, "file larger than %d bytes", MaxFileSize)
		return
	}
	lines := splitLines(data)
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		text := strings.TrimSpace(stripComment(lines[i]))
		if text == "" {
			continue
		}
		// Continuation lines start with white space.
		for i+1 < len(lines) && len(lines[i+1]) > 0 && (lines[i+1][0] == ' ' || lines[i+1][0] == '\t') {
			i++
			if t := strings.TrimSpace(stripComment(lines[i])); t != "" {
				text += " " + t
			}
		}
		if f := strings.Fields(text); f[0] == "include" {
			if len(f) != 2 {
				l.errf(path, lineNo, "include takes exactly one file name or pattern")
				continue
			}
			l.include(path, lineNo, f[1], depth)
			continue
		}
		l.entry(path, lineNo, text)
	}
}

func (l *secretsLoader) include(from string, lineNo int, pattern string, depth int) {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		l.file(pattern, from, lineNo, depth+1)
		return
	}
	matches, err := l.fs.Glob(pattern)
	if err != nil {
		l.errf(from, lineNo, "include %s: bad pattern: %v", pattern, err)
		return
	}
	for _, m := range matches {
		l.file(m, from, lineNo, depth+1)
	}
}

// entry parses "selectors : TYPE secret". Messages never quote the secret.
func (l *secretsLoader) entry(path string, lineNo int, text string) {
	sel, rest, ok := splitSecretLine(text)
	if !ok {
		l.errf(path, lineNo, "expected [IDs] : PSK <secret>; put a ':' with blanks around it between the IDs and the secret type")
		return
	}
	kindTok, value, _ := strings.Cut(strings.TrimSpace(rest), " ")
	kind := strings.ToUpper(kindTok)
	if !secretKinds[kind] {
		// strongSwan treats a bare quoted string as a PSK (old syntax).
		if strings.HasPrefix(kindTok, "\"") {
			kind, value = "PSK", strings.TrimSpace(rest)
		} else {
			l.errf(path, lineNo, "unknown secret type %q; expected PSK, RSA, ECDSA, EAP, XAUTH, ...", truncate(kindTok, 20))
			return
		}
	}
	e := secretEntry{kind: kind, file: path, line: lineNo}
	for _, s := range strings.Fields(sel) {
		id, err := ParseIdentity(strings.Trim(s, "\""))
		if err != nil {
			l.errf(path, lineNo, "selector: %v", err)
			return
		}
		e.ids = append(e.ids, id)
	}
	if kind == "RSA" || kind == "ECDSA" || kind == "PKCS8" {
		l.privateKey(&e, value)
		l.s.entries = append(l.s.entries, e)
		return
	}
	if kind != "PSK" {
		l.diags = append(l.diags, Diagnostic{File: path, Line: lineNo, Severity: SeverityWarning,
			Msg: fmt.Sprintf("%s secrets are accepted but not used yet (ipsecgw authenticates with pre-shared keys or certificates)", kind)})
		l.s.entries = append(l.s.entries, e)
		return
	}
	key, err := decodeSecret(strings.TrimSpace(value))
	if err != nil {
		l.errf(path, lineNo, "PSK: %v", err)
		return
	}
	e.psk = PSK{b: key}
	l.s.entries = append(l.s.entries, e)
}

// privateKey loads the key file of an RSA, ECDSA or PKCS8 entry. One that
// cannot be read is a warning (as strongSwan, which skips it): only the
// conns whose certificate needs it fail, each with its own error.
func (l *secretsLoader) privateKey(e *secretEntry, value string) {
	f := strings.Fields(value)
	if len(f) == 0 {
		l.errf(e.file, e.line, "%s: the key file name is missing", e.kind)
		return
	}
	if len(f) > 1 {
		l.diags = append(l.diags, Diagnostic{File: e.file, Line: e.line, Severity: SeverityWarning,
			Msg: fmt.Sprintf("%s: passphrases are not supported; store the key unencrypted (chmod 600)", e.kind)})
	}
	path := credPath(l.ipsecDir, "private", f[0])
	data, err := readCred(l.fs, path)
	if err == nil {
		e.key, err = ParsePrivateKey(data)
		clear(data)
	}
	if err != nil {
		l.diags = append(l.diags, Diagnostic{File: e.file, Line: e.line, Severity: SeverityWarning,
			Msg: fmt.Sprintf("%s key %s not loaded: %v", e.kind, path, err)})
	}
}

// PrivateKey finds the loaded private key whose public half is pub (the
// public key of our certificate), as strongSwan finds a certificate's key.
func (s *Secrets) PrivateKey(pub crypto.PublicKey) (crypto.Signer, bool) {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	for _, e := range s.entries {
		if e.key == nil {
			continue
		}
		if k, ok := e.key.Public().(equaler); ok && k.Equal(pub) {
			return e.key, true
		}
	}
	return nil, false
}

// splitSecretLine finds the ':' between selectors and secret type. IPv6
// selectors contain colons, so the separator must stand alone (or end the
// last selector and be followed by blank).
func splitSecretLine(text string) (sel, rest string, ok bool) {
	if strings.HasPrefix(text, ":") {
		return "", text[1:], true
	}
	if i := strings.Index(text, " : "); i >= 0 {
		return text[:i], text[i+3:], true
	}
	if strings.HasSuffix(text, " :") {
		return "", "", false
	}
	// "host: PSK ..." without a blank before the colon.
	for i := 0; i+1 < len(text); i++ {
		if text[i] == ':' && text[i+1] == ' ' && (i == 0 || text[i-1] != ':') {
			f := strings.Fields(text[i+1:])
			if len(f) > 0 && (secretKinds[strings.ToUpper(f[0])] || strings.HasPrefix(f[0], "\"")) {
				return text[:i], text[i+1:], true
			}
		}
	}
	return "", "", false
}

// decodeSecret reads a quoted string, 0x hex or 0s base64 secret.
func decodeSecret(v string) ([]byte, error) {
	switch {
	case v == "":
		return nil, fmt.Errorf("the secret is missing")
	case v[0] == '"' || v[0] == '\'':
		q := v[0]
		var b []byte
		for i := 1; i < len(v); i++ {
			c := v[i]
			if c == '\\' && i+1 < len(v) {
				i++
				b = append(b, v[i])
				continue
			}
			if c == q {
				if strings.TrimSpace(v[i+1:]) != "" {
					return nil, fmt.Errorf("text after the closing quote of the secret")
				}
				if len(b) == 0 {
					return nil, fmt.Errorf("the secret is empty")
				}
				return b, nil
			}
			b = append(b, c)
		}
		return nil, fmt.Errorf("unterminated quoted secret")
	case strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X"):
		b, err := hex.DecodeString(strings.ReplaceAll(v[2:], "_", ""))
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("the 0x secret is not valid hex")
		}
		return b, nil
	case strings.HasPrefix(v, "0s"):
		b, err := base64.StdEncoding.DecodeString(v[2:])
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("the 0s secret is not valid base64")
		}
		return b, nil
	}
	if strings.ContainsAny(v, " \t") {
		return nil, fmt.Errorf("a secret containing blanks must be quoted")
	}
	return []byte(v), nil
}

// checkSecrets reports PSK conns without a usable key.
func (b *builder) checkSecrets(s *Secrets) {
	for _, c := range b.conns {
		if !b.loaded[c.Name] || !c.UsesPSK() {
			continue
		}
		kv, ok := b.authLine[c.Name]
		if !ok {
			kv = rawKV{File: c.File, Line: c.Line}
		}
		local, remote := effectiveID(c.Local), effectiveID(c.Remote)
		e, specific := s.lookup(local, remote)
		switch {
		case e == nil:
			b.add(SeverityError, kv, c.Name, fmt.Sprintf("no PSK in ipsec.secrets for %s <-> %s; add a line like \"%s %s : PSK \\\"...\\\"\"", local, remote, local, remote))
		case !specific:
			b.add(SeverityWarning, kv, c.Name, fmt.Sprintf("the PSK for %s <-> %s comes from %s:%d, whose selectors name neither end; add a line for this pair", local, remote, e.file, e.line))
		}
	}
}
