package control

// KeyExport is the answer to `export-keys`: the keys of the current SAs
// in the formats of Wireshark's ESP SA table (esp_sa) and IKEv2
// decryption table (ikev2_decryption_table), ready to be written to a
// Wireshark profile or passed with -o uat:NAME:... Anyone holding them
// can decrypt the tunnels' traffic.
type KeyExport struct {
	// ESPSA has two lines per CHILD SA (one per direction).
	ESPSA string `json:"esp_sa"`
	// AHSA has two lines per AH CHILD SA (one per direction), shaped as
	// ESPSA's without the encryption columns: "IPv4" or "IPv6", source,
	// destination, SPI, integrity algorithm, integrity key. Wireshark has
	// no such table (its AH dissector checks no ICV); it is for checking
	// the ICVs of a capture with other tools. Empty without AH SAs.
	AHSA string `json:"ah_sa,omitempty"`
	// IKEv2DecryptionTable has one line per IKE SA.
	IKEv2DecryptionTable string `json:"ikev2_decryption_table"`
	ChildSAs             int    `json:"child_sas"`
	IKESAs               int    `json:"ike_sas"`
	// Unsupported lists SAs whose algorithms Wireshark cannot decrypt
	// (for instance ChaCha20-Poly1305 in ESP), left out of the tables.
	Unsupported []string `json:"unsupported"`
}
