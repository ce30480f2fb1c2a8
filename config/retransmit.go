package config

import "time"

// RetransmitSettings control IKE retransmission: the n-th retransmission
// (n from 0) waits Timeout * Base^n (at most Limit when Limit > 0), with up
// to Jitter percent subtracted at random, and the exchange is abandoned
// after Tries retransmissions. The defaults are strongSwan's.
type RetransmitSettings struct {
	Timeout time.Duration
	Base    float64
	Tries   int
	Jitter  int // percent
	Limit   time.Duration
}
