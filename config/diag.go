package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Severity of a diagnostic.
type Severity uint8

// Severities. A warning never stops a configuration from loading.
const (
	SeverityWarning Severity = iota + 1
	SeverityError
)

func (s Severity) String() string {
	if s == SeverityError {
		return "error"
	}
	return "warning"
}

// Diagnostic is one problem found in the configuration, located by file and
// line. It never contains secret material.
type Diagnostic struct {
	File     string
	Line     int // 1-based; 0 only for problems with a whole file (unreadable, missing)
	Severity Severity
	Conn     string // connection (or section) name, when the problem belongs to one
	Keyword  string // keyword involved, when there is one
	Msg      string // what is wrong and what to change
}

// String formats the diagnostic as "FILE:LINE: severity: conn "x": keyword: message".
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	if d.Line > 0 {
		fmt.Fprintf(&b, ":%d", d.Line)
	}
	fmt.Fprintf(&b, ": %s: ", d.Severity)
	if d.Conn != "" {
		fmt.Fprintf(&b, "conn %q: ", d.Conn)
	}
	if d.Keyword != "" {
		fmt.Fprintf(&b, "%s: ", d.Keyword)
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Diagnostics is the list of every problem found; loading collects them all
// rather than stopping at the first.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == SeverityError })
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errs, warns int) {
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// Sort orders diagnostics by file, line, then severity (errors first).
func (ds Diagnostics) Sort() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(b.Severity, a.Severity))
	})
}

// Err returns an error listing the errors (not the warnings), or nil.
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds {
		if d.Severity == SeverityError {
			errs = append(errs, errors.New(d.String()))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return &LoadError{Diagnostics: slices.Clone(ds)}
}

// LoadError is returned when the configuration has errors; it carries every
// diagnostic, warnings included.
type LoadError struct {
	Diagnostics Diagnostics
}

func (e *LoadError) Error() string {
	errs, _ := e.Diagnostics.Count()
	for _, d := range e.Diagnostics {
		if d.Severity == SeverityError {
			if errs == 1 {
				return d.String()
			}
			return fmt.Sprintf("%s (and %d more errors)", d.String(), errs-1)
		}
	}
	return "configuration has errors"
}

// suggest returns the candidate closest to word when it is close enough to
// be a plausible typo, for "did you mean" hints.
func suggest(word string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if len(word) >= 4 && strings.HasPrefix(c, word) && bestD > 2 {
			best, bestD = c, 3
			continue
		}
		if diff := len(c) - len(word); diff > 2 || diff < -2 {
			continue // too far apart to be a typo; skip the quadratic distance
		}
		d := editDistance(word, c)
		if d < bestD || (d == bestD && c < best) {
			best, bestD = c, d
		}
	}
	limit := 2
	if len(word) <= 4 {
		limit = 1
	}
	if bestD <= limit || (bestD == 3 && strings.HasPrefix(best, word)) {
		return best
	}
	return ""
}

// editDistance is the Damerau-Levenshtein (optimal string alignment)
// distance: a swapped pair of letters is one typo.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
