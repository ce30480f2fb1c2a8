package control

import "context"

// Control commands.
const (
	CmdStatus = "status"
	CmdUp     = "up"
	CmdDown   = "down"
	// CmdReset tears a conn down and initiates it again.
	CmdReset = "reset"
	// CmdReload reloads ipsec.conf and ipsec.secrets (as SIGHUP does).
	CmdReload = "reload"
	// CmdListSAs lists the IKE and CHILD SAs with their lifetimes.
	CmdListSAs = "list-sas"
	// CmdStats returns the dataplane and IKE counters and the usage.
	CmdStats = "stats"
	// CmdEvents streams events: after the first response line, one line
	// per event until the client closes the connection.
	CmdEvents = "events"
	// CmdExportKeys returns the current SAs' keys in Wireshark's formats;
	// only a client running as root may ask.
	CmdExportKeys = "export-keys"
)

// MaxRequestLen bounds one request line; a longer line closes the
// connection (a request is a few dozen bytes).
const MaxRequestLen = 64 << 10

// Request is one line a client sends.
type Request struct {
	Cmd  string `json:"cmd"`
	Name string `json:"name,omitempty"`
}

// Response is the one line the daemon answers each request with.
type Response struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	// Conns is set for status.
	Conns []ConnStatus `json:"conns,omitempty"`
	// Global is set for status: daemon-wide IKE counters.
	Global *GlobalStatus `json:"global,omitempty"`
	// Reload is set for reload: what changed.
	Reload *ReloadResult `json:"reload,omitempty"`
	// SAs is set for list-sas (an empty list is left out).
	SAs []SAEntry `json:"sas,omitempty"`
	// Stats is set for stats.
	Stats *Stats `json:"stats,omitempty"`
	// Event is set on the lines of an events stream after the first.
	Event *Event `json:"event,omitempty"`
	// Keys is set for export-keys.
	Keys *KeyExport `json:"keys,omitempty"`
}

// Backend is what the control socket drives: the running daemon, or a fake
// in tests.
type Backend interface {
	Status() []ConnStatus
	// Global returns the daemon-wide counters of the status.
	Global() GlobalStatus
	// Up starts (initiates) the named connection; it returns once the
	// attempt is under way, not when it is established.
	Up(name string) error
	// Down deletes the connection's SAs at the peer and locally.
	Down(name string) error
	// Reset tears the connection down and initiates it again; it returns
	// once the new attempt is under way.
	Reset(name string) error
	// Reload loads the configuration files again and applies them; a
	// configuration with errors is refused (an error) and the running
	// one stays.
	Reload() (ReloadResult, error)
	// ListSAs lists the conns that have SAs, in configuration order.
	ListSAs() []SAEntry
	// Stats returns the daemon's counters.
	Stats() Stats
	// Events delivers events from now on until ctx ends (then the
	// channel is closed) or the daemon stops.
	Events(ctx context.Context) <-chan Event
	// ExportKeys returns the current SAs' keys; the server asks it only
	// for a client running as root.
	ExportKeys() (KeyExport, error)
}
