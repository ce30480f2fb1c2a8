package message

// Where a payload may appear.
type placement uint8

const (
	outside placement = iota + 1 // unencrypted, before any SK payload
	inside                       // inside the SK payload
)

// rule says how often one payload type may appear in one kind of message.
// max < 0 means unlimited.
type rule struct {
	typ      PayloadType
	min, max int
	where    placement
}

// ruleKey selects a table entry: exchange and direction.
type ruleKey struct {
	ex       ExchangeType
	response bool
}

const many = -1

// rules is the one table of which payloads each exchange allows, modelled on
// RFC 7296 §1.2-1.5 and §2.6-2.8 (and, as a cross-check of what a deployed
// peer sends, strongSwan's message.c rule tables). Minimum counts apply to
// successful exchanges; a message carrying an error notification (type below
// 16384), or an IKE_SA_INIT response carrying COOKIE (§2.6) or REDIRECT (RFC
// 5685 §3), needs nothing but that notification. IKE_AUTH minimums
// are zero because with EAP (§2.16) and multiple authentication (RFC 4739)
// only the first request carries IDi and later ones carry only EAP or AUTH;
// the IKE_AUTH task checks the combination it expects.
//
// Payloads not listed are not allowed: they make the message INVALID_SYNTAX.
var rules = map[ruleKey][]rule{
	{IKE_SA_INIT, false}: {
		{PayloadN, 0, many, outside},
		{PayloadSA, 1, 1, outside},
		{PayloadKE, 1, 1, outside},
		{PayloadNonce, 1, 1, outside},
		{PayloadV, 0, many, outside},
	},
	{IKE_SA_INIT, true}: {
		{PayloadN, 0, many, outside},
		{PayloadSA, 1, 1, outside},
		{PayloadKE, 1, 1, outside},
		{PayloadNonce, 1, 1, outside},
		{PayloadCERTREQ, 0, many, outside},
		{PayloadV, 0, many, outside},
	},
	{IKE_AUTH, false}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadIDi, 0, 1, inside},
		{PayloadCERT, 0, many, inside},
		{PayloadCERTREQ, 0, many, inside},
		{PayloadIDr, 0, 1, inside},
		{PayloadAUTH, 0, 1, inside},
		{PayloadEAP, 0, 1, inside},
		{PayloadCP, 0, 1, inside},
		{PayloadSA, 0, 1, inside},
		{PayloadTSi, 0, 1, inside},
		{PayloadTSr, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{IKE_AUTH, true}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadIDr, 0, 1, inside},
		{PayloadCERT, 0, many, inside},
		{PayloadAUTH, 0, 1, inside},
		{PayloadEAP, 0, 1, inside},
		{PayloadCP, 0, 1, inside},
		{PayloadSA, 0, 1, inside},
		{PayloadTSi, 0, 1, inside},
		{PayloadTSr, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	// RFC 9242 §3, RFC 9370 §2.2.1: one additional key exchange per
	// IKE_INTERMEDIATE exchange.
	{IKE_INTERMEDIATE, false}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadKE, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{IKE_INTERMEDIATE, true}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadKE, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	// RFC 9370 §2.2.4: one additional key exchange of a CREATE_CHILD_SA
	// per IKE_FOLLOWUP_KE exchange, linked to it by the
	// ADDITIONAL_KEY_EXCHANGE notify.
	{IKE_FOLLOWUP_KE, false}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadKE, 1, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{IKE_FOLLOWUP_KE, true}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadKE, 1, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{CREATE_CHILD_SA, false}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadSA, 1, 1, inside},
		{PayloadNonce, 1, 1, inside},
		{PayloadKE, 0, 1, inside},
		{PayloadTSi, 0, 1, inside},
		{PayloadTSr, 0, 1, inside},
		{PayloadCP, 0, 1, inside}, // RFC 7296 §1.3 does not list CP, but deployed peers send it
		{PayloadV, 0, many, inside},
	},
	{CREATE_CHILD_SA, true}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadSA, 1, 1, inside},
		{PayloadNonce, 1, 1, inside},
		{PayloadKE, 0, 1, inside},
		{PayloadTSi, 0, 1, inside},
		{PayloadTSr, 0, 1, inside},
		{PayloadCP, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{INFORMATIONAL, false}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadD, 0, many, inside},
		{PayloadCP, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
	{INFORMATIONAL, true}: {
		{PayloadSK, 1, 1, outside},
		{PayloadN, 0, many, inside},
		{PayloadD, 0, many, inside},
		{PayloadCP, 0, 1, inside},
		{PayloadV, 0, many, inside},
	},
}

// Validate checks m against the table of payloads its exchange allows,
// before any handler sees it: the exchange must be known, every payload must
// be allowed in its place (outside or inside encryption), and counts must be
// within bounds. Call it once after ParseMessage, which checks the outer
// payloads (and for protected exchanges that an SK or SKF payload is there),
// and again after Decrypt or reassembly (m.Decrypted set), which also checks
// the inner payloads. An SKF payload stands in for SK.
//
// Errors are *Error with INVALID_SYNTAX, as RFC 7296 §2.21 prescribes for
// messages whose payloads do not fit their exchange.
func Validate(m *Message) error {
	key := ruleKey{m.Header.Exchange, m.Header.IsResponse()}
	rs, ok := rules[key]
	if !ok {
		return syntaxErr(18, "exchange type "+m.Header.Exchange.String()+" not supported")
	}
	var outer, inner [256]uint16
	for _, p := range m.Payloads {
		t := p.Type
		if t == PayloadSKF {
			t = PayloadSK
		}
		outer[t]++
	}
	hasError := false
	for _, p := range m.Payloads {
		if p.Type == PayloadN && endsExchange(p.Body) {
			hasError = true
		}
	}
	if m.Decrypted {
		for _, p := range m.Inner {
			inner[p.Type]++
			if p.Type == PayloadN && endsExchange(p.Body) {
				hasError = true
			}
		}
	}
	for i := range outer {
		if outer[i] == 0 && inner[i] == 0 {
			continue
		}
		t := PayloadType(i)
		var ro, ri *rule
		for j := range rs {
			if rs[j].typ == t {
				if rs[j].where == outside {
					ro = &rs[j]
				} else {
					ri = &rs[j]
				}
			}
		}
		if outer[i] > 0 && ro == nil {
			return syntaxErr(-1, t.String()+" payload not allowed unencrypted in "+describe(key))
		}
		if inner[i] > 0 && ri == nil {
			return syntaxErr(-1, t.String()+" payload not allowed encrypted in "+describe(key))
		}
	}
	for _, r := range rs {
		n := int(outer[r.typ])
		if r.where == inside {
			if !m.Decrypted {
				continue
			}
			n = int(inner[r.typ])
		}
		if r.max != many && n > r.max {
			return syntaxErr(-1, "too many "+r.typ.String()+" payloads in "+describe(key))
		}
		if n < r.min && !(hasError && r.typ != PayloadSK) {
			return syntaxErr(-1, "missing "+r.typ.String()+" payload in "+describe(key))
		}
	}
	return nil
}

// endsExchange reports whether a Notify body is one that replaces the normal
// content of its message: an error, or a COOKIE or REDIRECT demand.
func endsExchange(body []byte) bool {
	n, _, err := ParseNotify(body)
	return err == nil && (n.Type.IsError() || n.Type == COOKIE || n.Type == REDIRECT)
}

func describe(k ruleKey) string {
	if k.response {
		return k.ex.String() + " response"
	}
	return k.ex.String() + " request"
}
