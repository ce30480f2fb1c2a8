package keymat

import (
	"crypto/cipher"
	"encoding/binary"
	"slices"

	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
)

// The CBC IV chain of an ISAKMP SA (RFC 2409 Appendix B, §5.5, §5.7).
// IKEv1 sends no IVs; both sides compute them:
//
//   - phase 1: the first encrypted message (main mode 5, or aggressive
//     mode 3 where that is encrypted) uses hash(g^xi | g^xr), truncated
//     to the block size; every later phase 1 message uses the last
//     ciphertext block of the phase 1 message before it, whoever sent
//     it.
//   - after phase 1, every exchange (quick mode, informational) starts
//     with hash(P | M-ID), P being the last ciphertext block of the last
//     phase 1 message (main mode 6), and continues within the exchange
//     with the last ciphertext block of its previous message.
//
// As strongSwan's keymat_v1/iv_manager and wireshark's dissector do, a
// received message moves the chain only once it was accepted: Decrypt
// returns the block that becomes the next IV and the engine calls Update
// after the message verified (its HASH matched, or for main mode 5/6
// HASH_I/HASH_R). A forged or corrupt message, or a retransmission of a
// message already processed, must not move it; retransmissions are
// recognised before decryption (strongSwan compares a hash of the packet
// bytes with the last ones received) and answered from the cache, never
// decrypted again: a repeated request gets the cached response, and a
// repeated quick mode 2 or aggressive mode 2 tells the initiator that its
// final message (quick mode 3, aggressive mode 3) was lost, so it resends
// that. Sent messages move the chain when they are built (Encrypt returns
// the block, Update takes it); retransmitting them resends the cached
// bytes and changes nothing. The IV that starts each later exchange is
// derived from the phase 1 IV as it stands at the end of phase 1 (the
// last block of main mode 6, as Libreswan keeps it in st_ph1_iv), which
// only phase 1 messages (Message ID 0) move.
//
// strongSwan does not move the chain of informational exchanges (each
// message is the only one with its M-ID); calling Update for them is
// harmless as long as M-IDs are fresh, and Forget drops the state of an
// exchange that is over.

// DefaultMaxExchanges is how many exchanges an IVChain keeps IVs for
// beyond phase 1; older ones are forgotten first. strongSwan keeps 3
// (charon.max_ikev1_exchanges); a few more cost nothing and tolerate
// overlapping quick modes and DPD.
const DefaultMaxExchanges = 8

// IVChain keeps the CBC IVs of one ISAKMP SA. It is not safe for
// concurrent use; the IKE SA's event loop owns it. IVs are not secret
// (they are hashes of public values or ciphertext blocks), so it needs
// no wiping.
type IVChain struct {
	suite     Suite
	phase1    []byte
	exchanges []ivState // most recently used first
	max       int
}

type ivState struct {
	mid uint32
	iv  []byte
}

// InitialIV is the first phase 1 IV: hash(g^xi | g^xr) truncated to the
// cipher block size, with the KE payload bodies of initiator and
// responder.
func (s Suite) InitialIV(gxi, gxr []byte) []byte { return s.digest(gxi, gxr)[:s.blockSize] }

// NewIVChain starts the IV chain of an ISAKMP SA from the KE payload
// bodies of phase 1, keeping at most maxExchanges exchanges beyond phase
// 1 (DefaultMaxExchanges when zero or less).
func (s Suite) NewIVChain(gxi, gxr []byte, maxExchanges int) *IVChain {
	if maxExchanges <= 0 {
		maxExchanges = DefaultMaxExchanges
	}
	return &IVChain{suite: s, phase1: s.InitialIV(gxi, gxr), max: maxExchanges}
}

// IV returns the IV for the next message of the exchange with Message ID
// msgID (0: phase 1). For a Message ID not seen before it computes the
// exchange's first IV from the current phase 1 IV and remembers it. The
// result is a copy.
func (c *IVChain) IV(msgID uint32) []byte {
	if msgID == 0 {
		return slices.Clone(c.phase1)
	}
	return slices.Clone(c.lookup(msgID).iv)
}

func (c *IVChain) lookup(msgID uint32) *ivState {
	for i := range c.exchanges {
		if c.exchanges[i].mid == msgID {
			st := c.exchanges[i]
			copy(c.exchanges[1:i+1], c.exchanges[:i])
			c.exchanges[0] = st
			return &c.exchanges[0]
		}
	}
	iv := c.suite.digest(c.phase1, binary.BigEndian.AppendUint32(nil, msgID))[:c.suite.blockSize]
	if len(c.exchanges) < c.max {
		c.exchanges = append(c.exchanges, ivState{})
	}
	copy(c.exchanges[1:], c.exchanges)
	c.exchanges[0] = ivState{mid: msgID, iv: iv}
	return &c.exchanges[0]
}

// Update makes next (the last ciphertext block of a message of exchange
// msgID, as Encrypt and Decrypt return it) the IV of the exchange's next
// message. Call it for every message sent, and for every message received
// once it verified.
func (c *IVChain) Update(msgID uint32, next []byte) {
	if len(next) != c.suite.blockSize {
		return
	}
	if msgID == 0 {
		c.phase1 = slices.Clone(next)
		return
	}
	c.lookup(msgID).iv = slices.Clone(next)
}

// Forget drops the IV state of a finished exchange.
func (c *IVChain) Forget(msgID uint32) {
	c.exchanges = slices.DeleteFunc(c.exchanges, func(s ivState) bool { return s.mid == msgID })
}

// Padding: CBC needs the plaintext padded to the block size, and the pad
// bytes are the sender's choice; receivers find the end of the payloads
// from the payload chain and ignore what follows. Encrypt pads as
// strongSwan's encrypted_payload.c does: with 1 to BlockSize zero bytes (a
// whole block when the payloads already fill the last one). Decrypt
// accepts any padding of any length (some implementations pad with random
// bytes and a length byte, or add more than a block), since nothing after
// the last payload is interpreted.

// Encrypt encrypts a message in place: msg is a plaintext message as
// isakmp.AppendMessage builds it (header and payload chain). Encrypt sets
// the E flag, pads the body, encrypts it with CBC under iv, rewrites the
// header's Length and returns the message (msg's array when it has room
// for the padding) and the last ciphertext block, the next IV of the
// chain (IVChain.Update).
func (k *Keys) Encrypt(msg, iv []byte) (out, next []byte, err error) {
	if len(msg) < isakmp.HeaderLen {
		return nil, nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "message shorter than the ISAKMP header", Offset: -1}
	}
	if len(iv) != k.blockSize {
		return nil, nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "IV is not one cipher block", Offset: -1}
	}
	bs := k.blockSize
	pad := bs - (len(msg)-isakmp.HeaderLen)%bs
	for range pad {
		msg = append(msg, 0)
	}
	body := msg[isakmp.HeaderLen:]
	cipher.NewCBCEncrypter(k.block, iv).CryptBlocks(body, body)
	msg[19] |= isakmp.FlagEncryption
	binary.BigEndian.PutUint32(msg[24:], uint32(len(msg)))
	return msg, slices.Clone(body[len(body)-bs:]), nil
}

// Decrypt decrypts the body of an encrypted message in place with CBC
// under iv and decodes its payload chain (isakmp.Message.SetPlaintext).
// It returns the last ciphertext block, which becomes the next IV once
// the engine has accepted the message (IVChain.Update). A body that is
// not a whole number of blocks is dropped (isakmp.ErrDrop); one whose
// plaintext is no payload chain is PAYLOAD-MALFORMED, and almost always
// means the keys differ: in main mode message 5 or 6, a pre-shared key
// mismatch.
func (k *Keys) Decrypt(m *isakmp.Message, iv []byte) (next []byte, err error) {
	bs := k.blockSize
	body := m.Body
	switch {
	case !m.Encrypted():
		return nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "message is not encrypted", Offset: -1}
	case m.Decrypted:
		return nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "message already decrypted", Offset: -1}
	case len(iv) != bs:
		return nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "IV is not one cipher block", Offset: -1}
	case len(body) == 0 || len(body)%bs != 0:
		return nil, &isakmp.Error{Notify: isakmp.NotifyNone, Reason: "encrypted body is not a whole number of cipher blocks", Offset: isakmp.HeaderLen}
	}
	next = slices.Clone(body[len(body)-bs:])
	cipher.NewCBCDecrypter(k.block, iv).CryptBlocks(body, body)
	if err := m.SetPlaintext(body); err != nil {
		return nil, &isakmp.Error{Notify: isakmp.PAYLOAD_MALFORMED, Offset: -1,
			Reason: "decrypted payloads do not parse: the peer's keys differ (pre-shared key mismatch?) or the IV is out of step", Err: err}
	}
	return next, nil
}
