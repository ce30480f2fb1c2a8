package control

// UpdownStatus is what a conn's updown script (leftupdown=) did since the
// daemon started: scripts run when CHILD SAs come up and go down, and a
// failure never holds up IKE, so this is where it shows.
type UpdownStatus struct {
	Script string `json:"script"`
	// Runs and Failures count the runs (a failure: a non-zero exit, the
	// timeout, or the script could not be started).
	Runs     uint64 `json:"runs"`
	Failures uint64 `json:"failures"`
	// LastVerb is PLUTO_VERB of the last run ("" before the first).
	LastVerb string `json:"last_verb"`
	// LastError says why the last run failed; "" when it succeeded.
	LastError string `json:"last_error"`
}
