// Package shared holds what the IKE version engines (ike/ikev2, and the
// IKEv1 engine beside it) and the ike facade have in common, so that both
// versions negotiate, report and install the same way:
//
//   - the interfaces between the facade and an engine: Host (what an
//     engine asks of the Manager) and SA (the Manager's handle on one IKE
//     SA of any version), engine.go;
//   - the typed events an engine reports and the facade publishes
//     (events.go), and the status types the facade folds them into
//     (status.go);
//   - the ChildInstaller interface and the ChildSA handed to it
//     (install.go): the dataplane does not care which version negotiated;
//   - proposal selection in a version-neutral form (proposal.go): IANA
//     IKEv2 transform IDs, which an IKEv1 engine maps its attributes to,
//     as strongSwan does;
//   - traffic selector narrowing over spd.TS (ts.go), identities
//     (ids.go), the retransmission schedule (retransmit.go) and the clock
//     (clock.go).
//
// It imports no engine and no wire codec.
package shared
