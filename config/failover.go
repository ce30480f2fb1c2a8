package config

import "strconv"

// Two tunnels, one connection: two conns to two peers with the same
// selectors. Route-based conns (routed.go) leave the choice to the host's
// routes; policy-based ones need an order between their identical
// policies, which priority= gives (swanctl's children.priority and
// Libreswan's priority=, lower first). The preferred conn's policies
// decide while it has a CHILD SA; when it has none (its peer died and DPD
// removed the SA), the other conn's take over, and they give way again
// when the preferred conn is back.

// convertPriority reads priority=.
func (cb *connBuilder) convertPriority() {
	kv, ok := cb.get("priority")
	if !ok || kv.Value == "" {
		return
	}
	n, err := strconv.ParseUint(kv.Value, 10, 32)
	if err != nil || n == 0 || n >= 1<<30 {
		cb.errf(kv, "%q is not a policy priority (a number from 1 to %d; lower is preferred)", kv.Value, 1<<30-1)
		return
	}
	cb.c.Priority = uint32(n)
}
