package control

// KeyExport is the answer to `export-keys`: the keys of the current SAs
// in the formats of Wireshark's ESP SA table (esp_sa) and IKEv2
// decryption table (ikev2_decryption_table), ready to be written to a
// Wireshark profile or passed with -o uat:NAME:... Anyone holding them
// can decrypt the tunnels' traffic.
type KeyExport struct {
	// ESPSA has two lines per CHILD SA (one per direction).
	ESPSA string `json:"esp_sa"`
	// IKEv2DecryptionTable has one line per IKE SA.
	IKEv2DecryptionTable string `json:"ikev2_decryption_table"`
	ChildSAs             int    `json:"child_sas"`
	IKESAs               int    `json:"ike_sas"`
	// Unsupported lists SAs whose algorithms Wireshark cannot decrypt
	// (for instance ChaCha20-Poly1305 in ESP), left out of the tables.
	Unsupported []string `json:"unsupported"`
}
