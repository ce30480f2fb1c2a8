package daemon

import (
	"log/slog"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
)

// logStates logs one line per connection state change, from IKE's
// StateChanged events, until events is closed (the Manager closed).
func logStates(log *slog.Logger, events <-chan ike.Event) {
	for ev := range events {
		sc, ok := ev.(ike.StateChanged)
		if !ok {
			continue
		}
		attrs := []any{"conn", sc.Conn, "state", sc.To, "from", sc.From}
		if sc.Reason != "" && sc.To != ike.StateEstablished {
			attrs = append(attrs, "reason", sc.Reason)
		}
		if sc.To == ike.StateEstablished {
			attrs = append(attrs, "ike", sc.Status.Algorithms)
			for _, ch := range sc.Status.Children {
				attrs = append(attrs, "esp", ch.Algorithms, "spi_in", control.FormatSPI(ch.InSPI), "spi_out", control.FormatSPI(ch.OutSPI))
			}
		}
		log.Info("connection state", attrs...)
	}
}

// isStateChange selects the events logStates logs (its subscription's
// filter).
func isStateChange(ev ike.Event) bool {
	_, ok := ev.(ike.StateChanged)
	return ok
}
