package sad

import "fmt"

// DropReason says why the dataplane discarded a packet. The dataplane counts
// drops per SA (SA.Drop) and globally by this value, and metrics label them
// with String(), so the set is small and stable.
type DropReason uint8

const (
	// NotDropped is the zero value: the packet goes on.
	NotDropped DropReason = iota
	// DropNoSA: inbound, no SA for the SPI; outbound, the policy says protect
	// but no SA is installed (yet). Never sent in clear.
	DropNoSA
	// DropReplay: the sequence number is a duplicate or behind the window.
	DropReplay
	// DropAuthFailed: the ICV did not verify.
	DropAuthFailed
	// DropSelectorMismatch: the decrypted inner packet is outside the SA's
	// traffic selectors (RFC 4301 §5.2 step 4).
	DropSelectorMismatch
	// DropMalformed: the packet could not be parsed (short, bad lengths,
	// bad padding).
	DropMalformed
	// DropQueueFull: a dataplane queue was full.
	DropQueueFull
	// DropPolicy: the SPD said drop, or no rule matched.
	DropPolicy
	// DropExpired: the SA reached its hard lifetime or used up its sequence
	// numbers and refuses more packets.
	DropExpired

	// NumDropReasons is the number of values, for arrays indexed by reason.
	NumDropReasons = int(iota)
)

var dropNames = [NumDropReasons]string{
	"not dropped", "no SA", "replay", "auth failed", "selector mismatch",
	"malformed", "queue full", "policy drop", "SA expired",
}

// String returns a short human-readable name.
func (r DropReason) String() string {
	if int(r) < NumDropReasons {
		return dropNames[r]
	}
	return fmt.Sprintf("drop(%d)", uint8(r))
}

var dropLabels = [NumDropReasons]string{
	"", "no_sa", "replay", "auth_failed", "selector_mismatch",
	"malformed", "queue_full", "policy", "expired",
}

// Label returns a metrics label value (lower case, no spaces).
func (r DropReason) Label() string {
	if int(r) < NumDropReasons {
		return dropLabels[r]
	}
	return "unknown"
}
