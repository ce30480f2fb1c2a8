package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// swanctl.conf is strongSwan's settings syntax: "name {" opens a section,
// "}" closes it, "key = value" sets a value up to the end of the line,
// "#" starts a comment, "include PATTERN" reads files (relative to the
// including file) into the current section, and sections of the same name
// in the same place are merged. readSwanctl parses it into a tree; the
// translation into connections is in swanctl_conn.go.

// swNode is one section.
type swNode struct {
	name       string
	file       string
	line       int
	kvs        []swKV
	subs       []*swNode
	path       string // "connections.s2s.children.net", for messages
	referenced bool   // written as "name : template {" (not supported)
}

// swKV is one "key = value" line.
type swKV struct {
	key, value string
	file       string
	line       int
}

func (n *swNode) sub(name, file string, line int) *swNode {
	for _, s := range n.subs {
		if s.name == name {
			return s
		}
	}
	path := name
	if n.path != "" {
		path = n.path + "." + name
	}
	s := &swNode{name: name, file: file, line: line, path: path}
	n.subs = append(n.subs, s)
	return s
}

// get returns the last value of key (later lines win, as in strongSwan).
func (n *swNode) get(key string) (swKV, bool) {
	for i := len(n.kvs) - 1; i >= 0; i-- {
		if n.kvs[i].key == key {
			return n.kvs[i], true
		}
	}
	return swKV{}, false
}

type swReader struct {
	fs    fileSystem
	diags Diagnostics
	stack []string
	files int
}

func (r *swReader) errorf(file string, line int, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{File: file, Line: line, Severity: SeverityError, Msg: fmt.Sprintf(format, args...)})
}

func (r *swReader) warnf(file string, line int, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{File: file, Line: line, Severity: SeverityWarning, Msg: fmt.Sprintf(format, args...)})
}

// readFile parses one file into section into; from/fromLine locate the
// include line that named it.
func (r *swReader) readFile(into *swNode, name, from string, fromLine int) {
	for _, f := range r.stack {
		if f == name {
			r.errorf(from, fromLine, "include %s: include loop, the file is already being read; remove this include", name)
			return
		}
	}
	if len(r.stack) > MaxIncludeDepth {
		r.errorf(from, fromLine, "includes nested deeper than %d levels", MaxIncludeDepth)
		return
	}
	if r.files++; r.files > MaxFiles {
		if r.files == MaxFiles+1 {
			r.errorf(from, fromLine, "more than %d files included", MaxFiles)
		}
		return
	}
	data, err := r.fs.ReadFile(name)
	if err != nil {
		if from == "" {
			r.errorf(name, 0, "cannot read: %v", unwrapPathError(err))
		} else {
			r.errorf(from, fromLine, "include %s: %v", name, unwrapPathError(err))
		}
		return
	}
	if len(data) > MaxFileSize {
		r.errorf(name, 1, "file larger than %d bytes", MaxFileSize)
		return
	}
	r.stack = append(r.stack, name)
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	open := []*swNode{into}
	for i, line := range splitLines(data) {
		lineNo := i + 1
		if len(line) > MaxLineLength {
			r.errorf(name, lineNo, "line longer than %d bytes", MaxLineLength)
			continue
		}
		if strings.ContainsRune(line, 0) {
			r.errorf(name, lineNo, "line contains a NUL byte")
			continue
		}
		text := strings.TrimSpace(swStripComment(line))
		cur := open[len(open)-1]
		switch {
		case text == "":
		case text == "}":
			if len(open) == 1 {
				r.errorf(name, lineNo, "\"}\" without an open section")
				continue
			}
			open = open[:len(open)-1]
		case strings.HasSuffix(text, "{") && !strings.Contains(text, "="):
			head := strings.TrimSpace(strings.TrimSuffix(text, "{"))
			refs := ""
			if i := strings.IndexByte(head, ':'); i >= 0 {
				head, refs = strings.TrimSpace(head[:i]), strings.TrimSpace(head[i+1:])
			}
			if head == "" || strings.ContainsAny(head, " \t\"") {
				r.errorf(name, lineNo, "invalid section name %q", truncate(head, 40))
				head = "invalid"
			}
			s := cur.sub(head, name, lineNo)
			if refs != "" {
				r.errorf(name, lineNo, "section %s: references to other sections (\": %s\") are not supported; write the settings out", s.path, truncate(refs, 40))
				s.referenced = true
			}
			open = append(open, s)
		case strings.HasPrefix(text, "include ") || strings.HasPrefix(text, "include\t"):
			r.include(cur, name, lineNo, strings.TrimSpace(text[len("include"):]))
		default:
			eq := strings.IndexByte(text, '=')
			if eq <= 0 {
				r.errorf(name, lineNo, "expected \"key = value\", \"name {\", \"}\" or \"include FILE\", got %q", truncate(text, 40))
				continue
			}
			key := strings.TrimSpace(text[:eq])
			if strings.ContainsAny(key, " \t{}\"") {
				r.errorf(name, lineNo, "invalid key %q", truncate(key, 40))
				continue
			}
			value, err := swUnquote(strings.TrimSpace(text[eq+1:]))
			if err != nil {
				r.errorf(name, lineNo, "%s: %v", key, err)
				continue
			}
			cur.kvs = append(cur.kvs, swKV{key: key, value: value, file: name, line: lineNo})
		}
	}
	for _, s := range open[1:] {
		r.errorf(name, s.line, "section %s is not closed with \"}\" before the end of the file", s.path)
	}
}

func (r *swReader) include(into *swNode, from string, lineNo int, written string) {
	written = strings.Trim(written, "\"")
	if written == "" {
		r.errorf(from, lineNo, "include needs a file name or pattern")
		return
	}
	pattern := written
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(from), pattern)
	}
	if !strings.ContainsAny(pattern, "*?[") {
		r.readFile(into, pattern, from, lineNo)
		return
	}
	matches, err := r.fs.Glob(pattern)
	if err != nil {
		r.errorf(from, lineNo, "include %s: bad pattern: %v", written, err)
		return
	}
	for _, m := range matches {
		r.readFile(into, m, from, lineNo)
	}
}

// swStripComment cuts a "#" comment that is not inside a quoted value.
func swStripComment(line string) string {
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
			if !inQuote {
				return line[:i]
			}
		}
	}
	return line
}

// swUnquote removes the quotes of a "quoted value" and its \" escapes.
func swUnquote(v string) (string, error) {
	if !strings.HasPrefix(v, "\"") {
		return v, nil
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		case '"':
			if strings.TrimSpace(v[i+1:]) != "" {
				return "", fmt.Errorf("text after the closing quote")
			}
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("unterminated quoted value")
}

// looksLikeSwanctl tells a swanctl.conf from an ipsec.conf: by its name,
// or by a top-level section of swanctl's ("connections {", "secrets {"
// ...), which ipsec.conf's syntax cannot contain.
func looksLikeSwanctl(fsys fileSystem, path string) bool {
	if filepath.Base(path) == "swanctl.conf" {
		return true
	}
	data, err := fsys.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range splitLines(data) {
		f := strings.Fields(swStripComment(line))
		if len(f) >= 2 && f[len(f)-1] == "{" || len(f) == 1 && strings.HasSuffix(f[0], "{") {
			switch strings.TrimSuffix(f[0], "{") {
			case "connections", "secrets", "authorities", "pools":
				return true
			}
		}
	}
	return false
}
