// Package keymat is the IKEv1 key schedule and message protection (RFC
// 2409 §5, §5.5, §5.7 and Appendix B) for pre-shared key authentication,
// as pure functions over byte slices and one small state type, IVChain.
//
// # Key schedule
//
//	NewSuite(encr, prf)                         the negotiated cipher and PRF (HMAC of the hash)
//	SKEYIDPSK(suite, psk, Ni_b, Nr_b)           SKEYID = prf(psk, Ni_b | Nr_b)
//	Derive(suite, SKEYID, g^xy, CKY-I, CKY-R)   SKEYID_d, SKEYID_a, SKEYID_e and Ka (Appendix B)
//	DerivePSK(...)                              both in one
//	Keys.HashI / HashR                          phase 1 authentication (§5)
//	Keys.QuickHash1/2/3, InformationalHash      phase 2 HASH payloads (§5.5, §5.7)
//	Keys.KEYMAT, Keys.ChildKeys                 IPsec SA keys per direction (§5.5)
//	Suite.NATDHash                              NAT-D payload data (RFC 3947 §3.2)
//
// # Protection
//
//	Suite.NewIVChain(g^xi, g^xr, n)             the CBC IV chain of an ISAKMP SA (cbc.go)
//	Keys.Encrypt(msg, iv)                       pad and encrypt a plaintext message in place
//	Keys.Decrypt(m, iv)                         decrypt an isakmp.Message in place and decode it
//
// Both return the last ciphertext block, which the engine hands to
// IVChain.Update when the message counts (sent, or received and
// verified); cbc.go explains the chain and its retransmission rules.
//
// The PRF is transform's HMAC; the ciphers are crypto/aes and crypto/des
// in crypto/cipher's CBC mode, used directly because IKEv1 messages carry
// neither an IV nor an integrity check, which transform.Protector's layout
// assumes.
//
// Key holders (Keys, ChildKeys) print as "redacted" and have Zero
// methods; keys are derived into one backing array each, so that Zero
// reaches every copy this package made.
package keymat
