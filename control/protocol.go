package control

// Control commands.
const (
	CmdStatus = "status"
	CmdUp     = "up"
	CmdDown   = "down"
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
}
