package control

import (
	"fmt"
	"io"
	"strings"
)

// ReloadResult is the answer to `reload`: what the new configuration
// changed, as the daemon applied it.
type ReloadResult struct {
	// Conns is the number of conns now loaded.
	Conns int `json:"conns"`
	// Changes lists each conn added, removed or changed; empty when the
	// files are unchanged.
	Changes []ConnChange `json:"changes"`
	// Warnings are the configuration's warnings as FILE:LINE: message.
	Warnings []string `json:"warnings"`
}

// ConnChange is one changed conn.
type ConnChange struct {
	Conn string `json:"conn"`
	// Kind is added, removed or changed.
	Kind string `json:"kind"`
	// Impact says what a change needs: none, rekey (from the next rekey
	// on), new CHILD SA or new IKE SA (the conn was taken down and, with
	// auto=start, brought up again).
	Impact string `json:"impact"`
	// Fields are the settings that changed.
	Fields []string `json:"fields"`
}

// WriteReload prints a reload's result for `ipsecgw reload`.
func WriteReload(w io.Writer, r ReloadResult) error {
	var b strings.Builder
	for _, wn := range r.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", wn)
	}
	if len(r.Changes) == 0 {
		fmt.Fprintf(&b, "configuration reloaded: %d conns, no changes\n", r.Conns)
	} else {
		fmt.Fprintf(&b, "configuration reloaded: %d conns, %d changed\n", r.Conns, len(r.Changes))
	}
	for _, c := range r.Changes {
		fmt.Fprintf(&b, "  %s %s", c.Conn, c.Kind)
		if c.Kind == "changed" {
			fmt.Fprintf(&b, " (%s; impact: %s)", strings.Join(c.Fields, ", "), c.Impact)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
