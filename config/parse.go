package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// rawKV is one "key=value" line as written.
type rawKV struct {
	Key, Value string
	File       string
	Line       int
	sect       string // section the line was inherited from, set while resolving also=
	// shown is the keyword as the file wrote it when it differs from Key:
	// the swanctl.conf key a setting was translated from.
	shown string
}

// keyword names the line's keyword in diagnostics.
func (kv rawKV) keyword() string {
	if kv.shown != "" {
		return kv.shown
	}
	return kv.Key
}

// rawSection is one physical section ("conn x" up to the next header).
type rawSection struct {
	Kind, Name string // "config", "conn", "ca"
	File       string
	Line       int
	KVs        []rawKV
}

// fileSystem abstracts file access so that the parser can be fuzzed and
// tested on in-memory trees.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	Glob(pattern string) ([]string, error)
	Stat(name string) (fs.FileInfo, error)
}

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }
func (osFS) Glob(pattern string) ([]string, error) { return filepath.Glob(pattern) }
func (osFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

// Parser limits, see the package documentation.
const (
	MaxFileSize     = 16 << 20
	MaxIncludeDepth = 10
	MaxFiles        = 1000
	MaxLineLength   = 64 << 10
	MaxSections     = 20000
)

type confParser struct {
	fs       fileSystem
	diags    Diagnostics
	sections []*rawSection
	stack    []string
	files    int
	// libreswanFiles marks files written in the Libreswan/Openswan dialect.
	libreswanFiles map[string]bool
}

func (p *confParser) errorf(file string, line int, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{File: file, Line: line, Severity: SeverityError, Msg: fmt.Sprintf(format, args...)})
}

func (p *confParser) warnf(file string, line int, format string, args ...any) {
	p.diags = append(p.diags, Diagnostic{File: file, Line: line, Severity: SeverityWarning, Msg: fmt.Sprintf(format, args...)})
}

// parseFile reads and parses one file; from/fromLine locate the include
// statement that named it (empty for the top-level file).
func (p *confParser) parseFile(name, from string, fromLine int) {
	p.parseFileAs(name, name, from, fromLine)
}

// parseFileAs reads name; written is how the include line spelled it, for
// messages.
func (p *confParser) parseFileAs(name, written, from string, fromLine int) {
	for _, f := range p.stack {
		if f == name {
			p.errorf(from, fromLine, "include %s: include loop, the file is already being read; remove this include", written)
			return
		}
	}
	if len(p.stack) > MaxIncludeDepth {
		p.errorf(from, fromLine, "includes nested deeper than %d levels", MaxIncludeDepth)
		return
	}
	p.files++
	if p.files > MaxFiles {
		if p.files == MaxFiles+1 {
			p.errorf(from, fromLine, "more than %d files included", MaxFiles)
		}
		return
	}
	data, err := p.fs.ReadFile(name)
	if err != nil {
		if from == "" {
			p.errorf(name, 0, "cannot read: %v", unwrapPathError(err))
		} else {
			p.errorf(from, fromLine, "include %s: %v", written, unwrapPathError(err))
		}
		return
	}
	p.stack = append(p.stack, name)
	p.parseData(name, data)
	p.stack = p.stack[:len(p.stack)-1]
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parseData parses the text of one ipsec.conf file.
func (p *confParser) parseData(name string, data []byte) {
	if len(data) > MaxFileSize {
		p.errorf(name, 1, "file larger than %d bytes", MaxFileSize)
		return
	}
	lines := splitLines(data)
	var cur *rawSection
	for i := 0; i < len(lines); i++ {
		lineNo := i + 1
		line := lines[i]
		if len(line) > MaxLineLength {
			p.errorf(name, lineNo, "line longer than %d bytes", MaxLineLength)
			continue
		}
		if strings.ContainsRune(line, 0) {
			p.errorf(name, lineNo, "line contains a NUL byte")
			continue
		}
		indented := len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
		text := strings.TrimSpace(stripComment(line))
		if text == "" {
			continue
		}
		if !indented {
			cur = p.parseHeader(name, lineNo, text)
			continue
		}
		if cur == nil {
			p.errorf(name, lineNo, "indented line %q outside of a section; start a section with \"conn NAME\" or \"config setup\", or remove the indentation", truncate(text, 40))
			continue
		}
		eq := strings.IndexByte(text, '=')
		if eq < 0 {
			p.errorf(name, lineNo, "expected keyword=value, got %q", truncate(text, 40))
			continue
		}
		key := strings.TrimSpace(text[:eq])
		rest := strings.TrimSpace(line[strings.IndexByte(line, '=')+1:])
		if key == "" || !validKey(key) {
			p.errorf(name, lineNo, "invalid keyword %q", truncate(key, 40))
			continue
		}
		value, consumed, err := parseValue(rest, lines[i+1:])
		if err != nil {
			p.errorf(name, lineNo, "%s: %v", key, err)
			i += consumed
			continue
		}
		i += consumed
		cur.KVs = append(cur.KVs, rawKV{Key: key, Value: value, File: name, Line: lineNo})
		if libreswanOnlyKeyword(key) {
			p.libreswanFiles[name] = true
		}
	}
}

// parseHeader handles a non-indented line: a section header or include.
func (p *confParser) parseHeader(name string, lineNo int, text string) *rawSection {
	fields := strings.Fields(text)
	switch fields[0] {
	case "include":
		if len(fields) != 2 {
			p.errorf(name, lineNo, "include takes exactly one file name or pattern")
			return nil
		}
		p.include(name, lineNo, fields[1])
		return nil
	case "version":
		// "version 2" / "version 2.0" headed FreeS/WAN-era files; harmless.
		return nil
	case "config", "conn", "ca":
		if len(fields) != 2 {
			p.errorf(name, lineNo, "%q section needs exactly one name, e.g. \"%s %s\"", fields[0], fields[0], map[string]string{"config": "setup", "conn": "myconn", "ca": "myca"}[fields[0]])
			return nil
		}
		if fields[0] == "config" && fields[1] != "setup" {
			p.errorf(name, lineNo, "unknown config section %q; the only one is \"config setup\"", fields[1])
			return nil
		}
		if !validName(fields[1]) {
			p.errorf(name, lineNo, "invalid section name %q (letters, digits, '-', '_', '.' and '%%default')", truncate(fields[1], 40))
			return nil
		}
		if len(p.sections) >= MaxSections {
			if len(p.sections) == MaxSections {
				p.errorf(name, lineNo, "more than %d sections", MaxSections)
				p.sections = append(p.sections, nil)
			}
			return nil
		}
		s := &rawSection{Kind: fields[0], Name: fields[1], File: name, Line: lineNo}
		p.sections = append(p.sections, s)
		return s
	}
	msg := fmt.Sprintf("unexpected %q at the start of a line: sections start with \"conn\", \"config\", \"ca\" or \"include\", and keywords must be indented", truncate(fields[0], 40))
	if strings.Contains(fields[0], "=") {
		msg = fmt.Sprintf("keyword line %q must be indented (start it with a space or tab)", truncate(text, 40))
	} else if s := suggest(fields[0], []string{"conn", "config", "ca", "include"}); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	p.errorf(name, lineNo, "%s", msg)
	return nil
}

func (p *confParser) include(from string, lineNo int, written string) {
	pattern := written
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		p.parseFileAs(pattern, written, from, lineNo)
		return
	}
	matches, err := p.fs.Glob(pattern)
	if err != nil {
		p.errorf(from, lineNo, "include %s: bad pattern: %v", written, err)
		return
	}
	if len(matches) == 0 {
		// strongSwan includes nothing for a pattern without matches.
		p.warnf(from, lineNo, "include %s matches no file", written)
	}
	for _, m := range matches {
		p.parseFileAs(m, m, from, lineNo)
	}
}

func splitLines(data []byte) []string {
	data = bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n"))
	s := string(data)
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// stripComment removes a "#" comment: a "#" at the start of the line or
// after a blank, outside double quotes (ipsec.conf(5)), so that key IDs
// such as @#0123 survive.
func stripComment(line string) string {
	inQuote := false
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			if inQuote {
				i++
			}
		case '"':
			inQuote = !inQuote
		case '#':
			if !inQuote && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
				return line[:i]
			}
		}
	}
	return line
}

// parseValue decodes the value part of a keyword line. A double-quoted
// value keeps its spacing, knows \" \\ \n \r \t \b \f escapes and may span
// lines that end in a backslash; an unquoted one has runs of blanks
// reduced to one space. consumed is the number of continuation lines used.
func parseValue(s string, next []string) (string, int, error) {
	if !strings.HasPrefix(s, "\"") {
		s = strings.TrimSpace(stripComment(s))
		if strings.Contains(s, "\"") {
			return "", 0, fmt.Errorf("stray double quote in value %q; quote the whole value", truncate(s, 40))
		}
		return strings.Join(strings.Fields(s), " "), 0, nil
	}
	var b strings.Builder
	consumed := 0
	rest := s[1:]
	for {
		for i := 0; i < len(rest); i++ {
			c := rest[i]
			switch {
			case c == '"':
				tail := strings.TrimSpace(stripComment(rest[i+1:]))
				if tail != "" {
					return "", consumed, fmt.Errorf("text %q after the closing quote", truncate(tail, 40))
				}
				return b.String(), consumed, nil
			case c == '\\' && i+1 < len(rest):
				i++
				switch rest[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case 'b':
					b.WriteByte('\b')
				case 'f':
					b.WriteByte('\f')
				default:
					b.WriteByte(rest[i])
				}
			case c == '\\' && i+1 == len(rest):
				// Line continuation inside a quoted string.
				if consumed >= len(next) {
					return "", consumed, errors.New("unterminated quoted value at end of file")
				}
				rest = next[consumed]
				consumed++
				goto nextLine
			default:
				b.WriteByte(c)
			}
		}
		return "", consumed, errors.New("unterminated quoted value: add the closing \" (or end the line with \\ to continue it)")
	nextLine:
	}
}

func validKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validName(n string) bool {
	if n == "%default" {
		return true
	}
	if len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '+' || c == '@') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
