package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Protocol is the IKEv2 protocol ID a proposal belongs to.
type Protocol uint8

// IANA security protocol IDs (RFC 7296 section 3.3.1).
const (
	ProtoIKE Protocol = 1
	ProtoAH  Protocol = 2
	ProtoESP Protocol = 3
)

func (p Protocol) String() string {
	switch p {
	case ProtoIKE:
		return "IKE"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	}
	return fmt.Sprintf("PROTO(%d)", uint8(p))
}

// Transform is one algorithm of a proposal, as IANA numbers.
type Transform struct {
	Type   TransformType
	ID     uint16
	KeyLen uint16 // key length attribute in bits; 0 when the algorithm has none
}

// Name is the canonical strongSwan keyword of the transform ("aes128gcm16").
func (t Transform) Name() string { return algorithmName(t) }

// Proposal is one proposal: for each transform type, the acceptable
// algorithms in order of preference.
type Proposal struct {
	Protocol   Protocol
	Transforms []Transform
}

// Of returns the transforms of one type, in order of preference.
func (p Proposal) Of(t TransformType) []Transform {
	var out []Transform
	for _, x := range p.Transforms {
		if x.Type == t {
			out = append(out, x)
		}
	}
	return out
}

// AEAD reports whether the proposal's ciphers are combined-mode ones.
func (p Proposal) AEAD() bool {
	for _, x := range p.Of(TransformENCR) {
		if a, ok := lookupAlgorithm(x); ok && a.aead {
			return true
		}
	}
	return false
}

// PFS reports whether a CHILD SA proposal asks for a fresh key exchange.
func (p Proposal) PFS() bool {
	for _, x := range p.Of(TransformKE) {
		if x.ID != KENone {
			return true
		}
	}
	return false
}

// Names lists the algorithm keywords of the proposal in transform order.
func (p Proposal) Names() []string {
	out := make([]string, len(p.Transforms))
	for i, t := range p.Transforms {
		out[i] = t.Name()
	}
	return out
}

// String renders the proposal in strongSwan syntax.
func (p Proposal) String() string { return strings.Join(p.Names(), "-") }

// Equal reports whether two proposals list the same transforms in the same order.
func (p Proposal) Equal(q Proposal) bool {
	return p.Protocol == q.Protocol && slices.Equal(p.Transforms, q.Transforms)
}

func (p Proposal) clone() Proposal {
	p.Transforms = slices.Clone(p.Transforms)
	return p
}

func cloneProposals(ps []Proposal) []Proposal {
	if ps == nil {
		return nil
	}
	out := make([]Proposal, len(ps))
	for i, p := range ps {
		out[i] = p.clone()
	}
	return out
}

func proposalsEqual(a, b []Proposal) bool {
	return slices.EqualFunc(a, b, Proposal.Equal)
}

// Default proposal strings of strongSwan's ipsec.conf for a conn without
// ike= or esp=.
const (
	DefaultIKEProposal = "aes128-sha256-modp3072"
	DefaultESPProposal = "aes128-sha256"
	DefaultAHProposal  = "sha256"
)

// daemonDefaults are appended to non-strict proposal lists, the way charon
// appends its built-in proposals. They are ipsecgw's own choice: every
// algorithm it supports that is not considered weak, AEAD and classic
// ciphers in separate proposals as RFC 7296 requires.
func daemonDefaults(proto Protocol) []Proposal {
	return cloneProposals(parsedDefaults()[proto])
}

var parsedDefaults = sync.OnceValue(func() map[Protocol][]Proposal {
	m := map[Protocol][]Proposal{}
	for _, p := range []Protocol{ProtoIKE, ProtoESP, ProtoAH} {
		m[p] = parseDefaults(p)
	}
	return m
})

func parseDefaults(proto Protocol) []Proposal {
	var s string
	switch proto {
	case ProtoIKE:
		s = "aes128-aes192-aes256-sha256-sha384-sha512-x25519-ecp256-ecp384-ecp521-x448-modp3072-modp4096-modp6144-modp8192-modp2048," +
			"aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305-prfsha256-prfsha384-prfsha512-x25519-ecp256-ecp384-ecp521-x448-modp3072-modp4096-modp6144-modp8192-modp2048"
	case ProtoESP:
		s = "aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305,aes128-aes192-aes256-sha256-sha384-sha512"
	case ProtoAH:
		s = "sha256-sha384-sha512"
	}
	// parseProposal, not ParseProposals: the latter expands "default"
	// through this function.
	var ps []Proposal
	for _, part := range strings.Split(s, ",") {
		p, err := parseProposal(proto, part)
		if err != nil {
			panic("config: bad built-in default proposal: " + err.Error())
		}
		ps = append(ps, p)
	}
	return ps
}

// ProposalError says what is wrong in a proposal string.
type ProposalError struct {
	Proposal string // the offending proposal (one element of the list)
	Token    string // the offending keyword, if any
	Msg      string
}

func (e *ProposalError) Error() string {
	if e.Token != "" {
		return fmt.Sprintf("proposal %q: %q: %s", e.Proposal, e.Token, e.Msg)
	}
	return fmt.Sprintf("proposal %q: %s", e.Proposal, e.Msg)
}

// Limits on proposal strings, see the package documentation.
const (
	MaxProposals          = 32
	MaxTransformsPerProps = 64
)

// ParseProposals parses a proposal list in strongSwan syntax
// ("aes128-sha256-modp2048,aes256gcm16-prfsha384-ecp384!") or in
// Libreswan/Openswan syntax ("aes128-sha1;modp1536", "aes_gcm256-null",
// "aes-128-sha2_256+sha1;dh14"). Both produce the same typed value. strict
// reports a trailing "!" (strongSwan: do not append the daemon defaults).
// The result has integrity-derived PRFs filled in for IKE, integrity dropped
// for AEAD ciphers and "noesn" added where no ESN transform was given, as
// strongSwan does.
func ParseProposals(proto Protocol, s string) (ps []Proposal, strict bool, err error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "!") {
		strict = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "!"))
	}
	if s == "" {
		return nil, strict, &ProposalError{Msg: "empty proposal list"}
	}
	parts := strings.Split(s, ",")
	if len(parts) > MaxProposals {
		return nil, strict, &ProposalError{Proposal: s, Msg: fmt.Sprintf("more than %d proposals", MaxProposals)}
	}
	for _, part := range parts {
		part = strings.TrimSpace(part)
		if part == "default" {
			ps = append(ps, daemonDefaults(proto)...)
			continue
		}
		p, err := parseProposal(proto, part)
		if err != nil {
			return nil, strict, err
		}
		ps = append(ps, p)
	}
	return ps, strict, nil
}

// IsLibreswanProposal reports whether a proposal string can only be
// Libreswan/Openswan syntax (";" before the DH group, "+" alternatives,
// Libreswan-only names such as aes_gcm or dh14).
func IsLibreswanProposal(s string) bool {
	if strings.ContainsAny(s, ";+") {
		return true
	}
	for _, part := range strings.Split(strings.TrimSuffix(s, "!"), ",") {
		for _, tok := range strings.Split(strings.TrimSpace(part), "-") {
			tok = strings.ToLower(strings.TrimSpace(tok))
			if _, ok := strongSwanAlgorithms[tok]; ok || tok == "" || tok == "default" || strings.HasPrefix(tok, "ke") {
				continue
			}
			if _, ok := libreswanAlgorithms[tok]; ok {
				return true
			}
			if _, _, ok := splitKeyLen(tok); ok {
				return true
			}
		}
	}
	return false
}

// splitKeyLen splits a Libreswan cipher with a key length suffix
// ("aes_gcm256", "aes_256", "aes_gcm_c_256") into its base and length.
func splitKeyLen(tok string) (algorithm, uint16, bool) {
	i := len(tok)
	for i > 0 && tok[i-1] >= '0' && tok[i-1] <= '9' {
		i--
	}
	if i == len(tok) || i == 0 {
		return algorithm{}, 0, false
	}
	n, err := strconv.Atoi(tok[i:])
	if err != nil || (n != 128 && n != 192 && n != 256) {
		return algorithm{}, 0, false
	}
	base := strings.TrimSuffix(strings.TrimSuffix(tok[:i], "_"), "-")
	a, ok := libreswanAlgorithms[base]
	if !ok || a.typ != TransformENCR || a.keyLen == 0 {
		return algorithm{}, 0, false
	}
	a.keyLen = uint16(n)
	return a, uint16(n), true
}

func parseProposal(proto Protocol, part string) (Proposal, error) {
	p := Proposal{Protocol: proto}
	perr := func(tok, msg string) error { return &ProposalError{Proposal: part, Token: tok, Msg: msg} }
	if part == "" {
		return p, perr("", "empty proposal")
	}
	// Libreswan separates the DH group with ";" and alternatives with "+";
	// flattening both to "-" gives strongSwan's shape.
	flat := strings.NewReplacer(";", "-", "+", "-").Replace(part)
	toks := strings.Split(flat, "-")
	if len(toks) > MaxTransformsPerProps {
		return p, perr("", fmt.Sprintf("more than %d algorithms", MaxTransformsPerProps))
	}
	lastEncr := -1
	for _, raw := range toks {
		tok := strings.ToLower(strings.TrimSpace(raw))
		if tok == "" {
			return p, perr("", "empty algorithm name (doubled separator?)")
		}
		// A bare number after a cipher is its key length (Openswan "aes-256").
		if n, err := strconv.Atoi(tok); err == nil {
			if lastEncr < 0 {
				return p, perr(tok, "key length without a preceding cipher")
			}
			t := p.Transforms[lastEncr]
			a, ok := lookupAlgorithm(t)
			if !ok || a.keyLen == 0 || (n != 128 && n != 192 && n != 256) {
				return p, perr(tok, "invalid key length for "+t.Name())
			}
			t.KeyLen = uint16(n)
			// "aes256+aes-256" names one cipher twice once the length is
			// applied; keep the first so the proposal prints as it parsed.
			if i := slices.Index(p.Transforms, t); i >= 0 && i != lastEncr {
				p.Transforms = slices.Delete(p.Transforms, lastEncr, lastEncr+1)
				lastEncr = slices.Index(p.Transforms, t)
				continue
			}
			p.Transforms[lastEncr] = t
			continue
		}
		// "null" after the cipher is Libreswan's "no integrity" (aes_gcm-null).
		if tok == "null" && lastEncr >= 0 {
			continue
		}
		typ := TransformType(0)
		if len(tok) > 4 && tok[0] == 'k' && tok[1] == 'e' && tok[2] >= '1' && tok[2] <= '7' && tok[3] == '_' {
			typ = TransformADDKE + TransformType(tok[2]-'1')
			tok = tok[4:]
		}
		a, ok := strongSwanAlgorithms[tok]
		if !ok {
			a, ok = libreswanAlgorithms[tok]
		}
		if !ok {
			a, _, ok = splitKeyLen(tok)
		}
		if !ok {
			msg := "unknown algorithm"
			if s := suggest(tok, algorithmKeywords()); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			return p, perr(raw, msg)
		}
		t := Transform{Type: a.typ, ID: a.id, KeyLen: a.keyLen}
		if typ != 0 {
			if a.typ != TransformKE {
				return p, perr(raw, "additional key exchanges take a key exchange method")
			}
			t.Type = typ
		}
		if !slices.Contains(p.Transforms, t) {
			p.Transforms = append(p.Transforms, t)
			if t.Type == TransformENCR {
				lastEncr = len(p.Transforms) - 1
			}
		}
	}
	return finishProposal(p, part)
}

// finishProposal applies strongSwan's completion rules and checks that the
// proposal can be negotiated at all.
func finishProposal(p Proposal, part string) (Proposal, error) {
	perr := func(msg string) error { return &ProposalError{Proposal: part, Msg: msg} }
	encr := p.Of(TransformENCR)
	aead, classic := 0, 0
	for _, e := range encr {
		if a, _ := lookupAlgorithm(e); a.aead {
			aead++
		} else {
			classic++
		}
	}
	if aead > 0 && classic > 0 {
		return p, perr("AEAD and classic ciphers cannot be combined in one proposal; split them with \",\"")
	}
	switch p.Protocol {
	case ProtoIKE:
		if len(encr) == 0 {
			return p, perr("an encryption algorithm is mandatory in IKE proposals")
		}
		if len(p.Of(TransformPRF)) == 0 {
			// strongSwan derives the PRFs from the integrity algorithms.
			for _, t := range p.Of(TransformINTEG) {
				a, _ := lookupAlgorithm(t)
				pt := Transform{Type: TransformPRF, ID: a.prf}
				if a.prf != 0 && !slices.Contains(p.Transforms, pt) {
					p.Transforms = append(p.Transforms, pt)
				}
			}
		}
		if aead > 0 {
			p.Transforms = slices.DeleteFunc(p.Transforms, func(t Transform) bool { return t.Type == TransformINTEG })
		} else if len(p.Of(TransformINTEG)) == 0 {
			return p, perr("an integrity algorithm is mandatory with a classic cipher (add e.g. sha256)")
		}
		if len(p.Of(TransformPRF)) == 0 {
			return p, perr("a PRF is mandatory in IKE proposals (add e.g. prfsha256)")
		}
		kes := p.Of(TransformKE)
		if len(kes) == 0 || slices.ContainsFunc(kes, func(t Transform) bool { return t.ID == KENone }) {
			return p, perr("a key exchange method (DH group) is mandatory in IKE proposals (add e.g. modp2048 or ecp256)")
		}
		if len(p.Of(TransformESN)) > 0 {
			return p, perr("esn/noesn apply to ESP and AH, not to IKE")
		}
	case ProtoESP:
		if len(encr) == 0 {
			return p, perr("an encryption algorithm is mandatory in ESP proposals")
		}
		if aead > 0 {
			p.Transforms = slices.DeleteFunc(p.Transforms, func(t Transform) bool { return t.Type == TransformINTEG })
		} else if len(p.Of(TransformINTEG)) == 0 {
			return p, perr("an integrity algorithm is mandatory in ESP proposals with a classic cipher (add e.g. sha256)")
		}
	case ProtoAH:
		if len(encr) > 0 {
			return p, perr("AH proposals take no encryption algorithm")
		}
		if len(p.Of(TransformINTEG)) == 0 {
			return p, perr("an integrity algorithm is mandatory in AH proposals")
		}
	}
	if len(p.Of(TransformPRF)) > 0 && p.Protocol != ProtoIKE {
		return p, perr("PRF algorithms apply to IKE proposals only")
	}
	if p.Protocol != ProtoIKE && len(p.Of(TransformESN)) == 0 {
		p.Transforms = append(p.Transforms, Transform{Type: TransformESN, ID: ESNNo})
	}
	sortTransforms(p.Transforms)
	return p, nil
}

// sortTransforms groups transforms by type in the order strongSwan prints
// them (cipher, integrity, PRF, key exchanges, ESN), keeping the order of
// preference within a type, so that equal proposals compare equal however
// they were written.
func sortTransforms(ts []Transform) {
	rank := func(t TransformType) int {
		switch t {
		case TransformENCR:
			return 0
		case TransformINTEG:
			return 1
		case TransformPRF:
			return 2
		case TransformKE:
			return 3
		case TransformESN:
			return 20
		}
		return 4 + int(t) // additional key exchanges, in order
	}
	slices.SortStableFunc(ts, func(a, b Transform) int { return rank(a.Type) - rank(b.Type) })
}

// unsupportedTransforms lists the transforms ipsecgw recognises but cannot run.
func unsupportedTransforms(ps []Proposal) []string {
	var out []string
	for _, p := range ps {
		for _, t := range p.Transforms {
			a, ok := lookupAlgorithm(t)
			if t.Type >= TransformADDKE && ok && (a.supported || isMLKEM(t.ID) || t.ID == KENone) {
				// RFC 9370 additional key exchanges: those of IKE SAs run
				// in IKE_INTERMEDIATE exchanges, those of rekeys and of
				// CHILD SAs created or rekeyed with CREATE_CHILD_SA in
				// IKE_FOLLOWUP_KE exchanges.
				continue
			}
			if t.Type >= TransformADDKE || !ok || !a.supported {
				if n := t.Name(); !slices.Contains(out, n) {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

// algorithmKeywords lists every proposal keyword, for "did you mean".
var algorithmKeywords = sync.OnceValue(func() []string {
	var l []string
	for k := range strongSwanAlgorithms {
		l = append(l, k)
	}
	for k := range libreswanAlgorithms {
		l = append(l, k)
	}
	slices.Sort(l)
	return slices.Compact(l)
})
