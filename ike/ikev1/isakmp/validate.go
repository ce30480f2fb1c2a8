package isakmp

// rule says how often one payload type may appear in a message of one
// exchange, and whether only inside encryption. max < 0 means unlimited.
type rule struct {
	typ       PayloadType
	max       int
	encrypted bool
}

// exchangeRules are the rules of one exchange type.
type exchangeRules struct {
	payloads []rule
	// encrypted: every message of the exchange is encrypted (quick
	// mode, RFC 2409 §5.5).
	encrypted bool
	// hashFirst: an encrypted message starts with its HASH payload
	// (RFC 2409 §5.5 and §5.7).
	hashFirst bool
	// phase1: Message ID zero (RFC 2409 §5: phase 1 messages use 0),
	// otherwise non-zero once encrypted (the M-ID selects the IV and
	// enters the HASH).
	phase1 bool
}

const many = -1

// rules is the one table of which payloads each exchange type may carry,
// modelled on RFC 2409 §5 (main, aggressive, quick mode, informational)
// and RFC 3947 (NAT-D in phase 1, NAT-OA in quick mode), and
// cross-checked against the rule tables of strongSwan's message.c, which
// is what a deployed peer sends. Counts are upper bounds over all
// messages of the exchange; which payloads one particular message must
// hold (SA, KE and nonce in main mode 1 and 3 ...) is the exchange
// handler's to check. A payload marked encrypted is allowed only in
// messages with the E flag: in main mode the identities and HASH_I/HASH_R
// are protected (RFC 2409 §5: "HDR*").
//
// Payload types not listed make the message INVALID-PAYLOAD-TYPE.
var rules = map[ExchangeType]exchangeRules{
	ExchangeIdentityProtection: {phase1: true, payloads: []rule{
		{PayloadSA, 1, false},
		{PayloadKE, 1, false},
		{PayloadNonce, 1, false},
		{PayloadID, 1, true},
		{PayloadCERT, many, true},
		{PayloadCR, many, false},
		{PayloadHash, 1, true},
		{PayloadSIG, 1, true},
		{PayloadN, many, false},
		{PayloadVID, many, false},
		{PayloadNATD, many, false},
		{PayloadNATDDraft, many, false},
	}},
	// Aggressive mode sends everything but the initiator's final HASH_I
	// (or SIG and CERT) in clear, and that one is encrypted by some
	// implementations and not by others (RFC 2409 §5.4 shows it
	// unencrypted; strongSwan and Libreswan encrypt it).
	ExchangeAggressive: {phase1: true, payloads: []rule{
		{PayloadSA, 1, false},
		{PayloadKE, 1, false},
		{PayloadNonce, 1, false},
		{PayloadID, 1, false},
		{PayloadCERT, many, false},
		{PayloadCR, many, false},
		{PayloadHash, 1, false},
		{PayloadSIG, 1, false},
		{PayloadN, many, false},
		{PayloadVID, many, false},
		{PayloadNATD, many, false},
		{PayloadNATDDraft, many, false},
	}},
	// Informational: notifications may come in clear (errors before the
	// ISAKMP SA has keys); deletes, and everything with a HASH, only
	// protected (RFC 2409 §5.7).
	ExchangeInformational: {hashFirst: true, payloads: []rule{
		{PayloadHash, 1, true},
		{PayloadN, many, false},
		{PayloadD, many, true},
		{PayloadVID, many, false},
	}},
	// Quick mode: HDR*, HASH(1), SA, Ni [, KE] [, IDci, IDcr] and the
	// answers; several SA payloads negotiate several SAs at once (RFC 2409
	// §5.5 "Multiple SA"), NAT-OA come in pairs (RFC 3947 §5.2).
	ExchangeQuickMode: {encrypted: true, hashFirst: true, payloads: []rule{
		{PayloadHash, 1, true},
		{PayloadSA, many, true},
		{PayloadNonce, 1, true},
		{PayloadKE, 1, true},
		{PayloadID, 2, true},
		{PayloadNATOA, 2, true},
		{PayloadNATOADraft, 2, true},
		{PayloadN, many, true},
		{PayloadVID, many, true},
	}},
}

// Validate checks m against the table of payloads its exchange allows,
// before any handler sees it:
//
//   - the exchange type is one IKE uses (INVALID-EXCHANGE-TYPE) and one
//     ipsecgw speaks (UNSUPPORTED-EXCHANGE-TYPE for base, authentication
//     only, transaction and new group exchanges);
//   - no authentication-only flag (INVALID-FLAGS: ipsecgw does not use
//     authentication-only informational exchanges);
//   - quick mode arrives encrypted (dropped otherwise: it could not be
//     authenticated);
//   - Message ID zero in phase 1, non-zero in encrypted quick mode and
//     informational messages (INVALID-MESSAGE-ID);
//   - once the payloads are known (unencrypted messages, or after
//     SetPlaintext): each payload type allowed and not too many
//     (INVALID-PAYLOAD-TYPE, PAYLOAD-MALFORMED), encrypted-only payloads
//     not in clear (INVALID-PAYLOAD-TYPE), and the HASH payload first where
//     the exchange needs one (INVALID-HASH-INFORMATION).
//
// Call it after ParseMessage and, for encrypted messages, again after
// SetPlaintext: before decryption only the header checks apply.
func Validate(m *Message) error {
	h := m.Header
	rs, ok := rules[h.Exchange]
	if !ok {
		switch h.Exchange {
		case ExchangeBase, ExchangeAuthOnly, ExchangeTransaction, ExchangeNewGroup:
			return &Error{Notify: UNSUPPORTED_EXCHANGE_TYPE, Data: []byte{byte(h.Exchange)},
				Reason: h.Exchange.String() + " exchanges are not supported", Offset: 18}
		}
		return &Error{Notify: INVALID_EXCHANGE_TYPE, Data: []byte{byte(h.Exchange)},
			Reason: h.Exchange.String() + " is not an IKE exchange", Offset: 18}
	}
	if h.Flags&FlagAuthOnly != 0 {
		return newErr(INVALID_FLAGS, 19, "authentication-only messages are not supported")
	}
	enc := h.Encrypted()
	if rs.encrypted && !enc {
		return newErr(NotifyNone, 19, h.Exchange.String()+" message not encrypted")
	}
	switch {
	case rs.phase1 && h.MessageID != 0:
		return newErr(INVALID_MESSAGE_ID, 20, "phase 1 message with a non-zero Message ID")
	case !rs.phase1 && enc && h.MessageID == 0:
		return newErr(INVALID_MESSAGE_ID, 20, "encrypted "+h.Exchange.String()+" message with Message ID zero")
	}
	if enc && !m.Decrypted {
		return nil
	}
	var count [256]uint16
	for _, p := range m.Payloads {
		count[p.Type]++
	}
	for t, n := range count {
		if n == 0 {
			continue
		}
		typ := PayloadType(t)
		var r *rule
		for i := range rs.payloads {
			if rs.payloads[i].typ == typ {
				r = &rs.payloads[i]
				break
			}
		}
		switch {
		case r == nil:
			return &Error{Notify: INVALID_PAYLOAD_TYPE, Data: []byte{byte(typ)},
				Reason: typ.String() + " payload not allowed in " + h.Exchange.String(), Offset: -1}
		case r.encrypted && !enc:
			return &Error{Notify: INVALID_PAYLOAD_TYPE, Data: []byte{byte(typ)},
				Reason: typ.String() + " payload of " + h.Exchange.String() + " sent unencrypted", Offset: -1}
		case r.max != many && int(n) > r.max:
			return malformed(-1, "too many "+typ.String()+" payloads in "+h.Exchange.String())
		}
	}
	if rs.hashFirst && enc {
		if _, ok := m.First(PayloadHash); !ok {
			return newErr(INVALID_HASH_INFORMATION, HeaderLen, "encrypted "+h.Exchange.String()+" message does not start with a HASH payload")
		}
	}
	return nil
}
