package isakmp

import (
	"errors"
	"slices"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// The engines select proposals in one version-neutral form:
// shared.Proposal with IANA IKEv2 transform types and IDs. This file maps
// ISAKMP SA payloads to that form and back, as strongSwan does for its
// IKEv1 support:
//
//   - phase 1 (RFC 2409 Appendix A): Encryption Algorithm 3DES-CBC and
//     AES-CBC (+ Key Length) become ENCR 3DES and AES-CBC; the Hash
//     Algorithm becomes both the PRF (HMAC with that hash, RFC 2409 §5)
//     and the INTEG transform of the same hash, which is what ike=
//     proposals hold ("aes128-sha1-modp2048"); the Group Description is
//     the KE transform (IKEv1 group numbers are IANA's IKE group numbers).
//   - phase 2 (RFC 2407 §4.4.4, §4.5): the ESP transform ID is the ENCR ID
//     (they coincide for every cipher we support), the Authentication
//     Algorithm attribute the INTEG transform, the Group Description the
//     PFS group, the Extended Sequence Number attribute (RFC 4304) ESN.
//
// The rest of an IKEv1 transform (authentication method, lifetimes,
// encapsulation mode) is not part of shared.Proposal and travels beside
// it in Phase1Offer and Phase2Offer: a responder needs the lifetimes to
// decide on RESPONDER-LIFETIME, and the proposal and transform numbers to
// answer (SA.Answer).
//
// A transform with an attribute we do not know or do not support is
// refused as a whole (Refused says why) rather than used without it:
// ignoring, say, an ECN or key rounds attribute would negotiate something
// other than what the peer asked for.

// Lifetime is an SA lifetime as IKEv1 negotiates it: in seconds, in
// kilobytes, or both. Zero means not given. Without a lifetime in seconds
// a phase 2 SA lives 28800 seconds (RFC 2407 §4.5, DefaultPhase2Lifetime);
// RFC 2409 gives no default for phase 1.
type Lifetime struct {
	Seconds   uint64
	Kilobytes uint64
}

// DefaultPhase2Lifetime is the lifetime in seconds of an IPsec SA whose
// transform has none (RFC 2407 §4.5).
const DefaultPhase2Lifetime = 28800

// attributes renders l as Life Type / Life Duration pairs, seconds first.
func (l Lifetime) attributes(phase1 bool) []Attribute {
	lt, ld := P2LifeType, P2LifeDuration
	if phase1 {
		lt, ld = P1LifeType, P1LifeDuration
	}
	var out []Attribute
	if l.Seconds > 0 {
		out = append(out, BasicAttr(lt, uint16(LifeSeconds)), NumAttr(ld, l.Seconds))
	}
	if l.Kilobytes > 0 {
		out = append(out, BasicAttr(lt, uint16(LifeKilobytes)), NumAttr(ld, l.Kilobytes))
	}
	return out
}

// take consumes a Life Type (remembered in pending) or the Life Duration
// that must follow it (RFC 2407 §4.5: "the Life Duration attribute MUST
// follow" its type).
func (l *Lifetime) take(a Attribute, typeAttr, durAttr AttrType, pending *LifeType) error {
	switch a.Type {
	case typeAttr:
		if !a.TV || (LifeType(a.Value) != LifeSeconds && LifeType(a.Value) != LifeKilobytes) {
			return newErr(ATTRIBUTES_NOT_SUPPORTED, -1, "life type "+a.String())
		}
		if *pending != 0 {
			return badSyntax(-1, "two life types without a duration between them")
		}
		*pending = LifeType(a.Value)
	case durAttr:
		v, ok := a.Uint()
		if !ok || v == 0 {
			return newErr(ATTRIBUTES_NOT_SUPPORTED, -1, "life duration "+a.String()+" is zero or longer than 64 bits")
		}
		switch *pending {
		case LifeSeconds:
			l.Seconds = v
		case LifeKilobytes:
			l.Kilobytes = v
		default:
			return badSyntax(-1, "life duration without a life type before it")
		}
		*pending = 0
	}
	return nil
}

// Phase1Offer is one transform of a phase 1 SA payload in the common
// form.
type Phase1Offer struct {
	// Proposal has protocol IKE and exactly one ENCR, PRF, INTEG and KE
	// transform. Its Number is the offer's position in the list
	// Phase1Offers returned (1-based), so that the Selection of
	// shared.Select leads back to the offer; it is not a wire number.
	Proposal shared.Proposal
	// ProposalNumber and TransformNumber are the wire numbers to answer
	// with (SA.Answer).
	ProposalNumber, TransformNumber uint8
	Auth                            AuthMethod
	Life                            Lifetime
}

// Phase2Offer is one transform of a quick mode SA payload in the common
// form.
type Phase2Offer struct {
	// Proposal has protocol ESP, the sender's SPI, one ENCR transform,
	// an INTEG transform unless the cipher is AEAD, a KE transform when
	// the offer asks for PFS, and one ESN transform; or protocol AH with
	// the INTEG, KE and ESN transforms and no ENCR. Number is the
	// offer's position in the list, as for Phase1Offer.
	Proposal                        shared.Proposal
	ProposalNumber, TransformNumber uint8
	// Mode is the Encapsulation Mode attribute, 0 when the transform has
	// none (RFC 2407 §4.5 leaves the default to the implementation; the
	// engine applies the conn's mode).
	Mode EncapMode
	Life Lifetime
}

// Refused names a transform of a received SA payload that could not be
// mapped, and why: Err is an *Error whose Notify is the reason
// (ATTRIBUTES-NOT-SUPPORTED, INVALID-TRANSFORM-ID, INVALID-PROTOCOL-ID,
// INVALID-SPI, BAD-PROPOSAL-SYNTAX). When nothing is acceptable, the
// engine answers NO-PROPOSAL-CHOSEN and logs these.
type Refused struct {
	ProposalNumber, TransformNumber uint8
	Err                             error
}

// maxOffers caps the offers of one SA payload: shared.Proposal.Number is
// a byte.
const maxOffers = 255

// phase1Hashes maps the phase 1 hash to the PRF and integrity algorithm
// of the same hash.
var phase1Hashes = map[HashAlg][2]transform.ID{
	HashMD5:     {transform.PRFHMACMD5, transform.IntegHMACMD5_96},
	HashSHA:     {transform.PRFHMACSHA1, transform.IntegHMACSHA1_96},
	HashSHA2256: {transform.PRFHMACSHA2_256, transform.IntegHMACSHA2_256_128},
	HashSHA2384: {transform.PRFHMACSHA2_384, transform.IntegHMACSHA2_384_192},
	HashSHA2512: {transform.PRFHMACSHA2_512, transform.IntegHMACSHA2_512_256},
}

// groups are the Group Description values we negotiate: MODP 768 to
// 8192, the RFC 5903 ECP groups, the RFC 5114 MODP groups with subgroups,
// and Curve25519/Curve448, which strongSwan also uses in IKEv1 with the
// IKEv2 numbers.
var groups = []transform.ID{
	transform.KEMODP768, transform.KEMODP1024, transform.KEMODP1536, transform.KEMODP2048, transform.KEMODP3072,
	transform.KEMODP4096, transform.KEMODP6144, transform.KEMODP8192, transform.KEECP256, transform.KEECP384,
	transform.KEECP521, transform.KEMODP1024S160, transform.KEMODP2048S224, transform.KEMODP2048S256,
	transform.KECurve25519, transform.KECurve448,
}

func group(v uint16) (transform.ID, error) {
	if !slices.Contains(groups, transform.ID(v)) {
		return 0, newErr(ATTRIBUTES_NOT_SUPPORTED, -1, "Diffie-Hellman group "+itoa(int(v))+" not supported")
	}
	return transform.ID(v), nil
}

// phase2Auth maps the phase 2 Authentication Algorithm to the IKEv2
// integrity transform (HMAC-SHA-2 truncated as RFC 4868 §2.4 says for
// IPsec).
var phase2Auth = map[AuthAlg]transform.ID{
	AuthAlgHMACMD5:     transform.IntegHMACMD5_96,
	AuthAlgHMACSHA1:    transform.IntegHMACSHA1_96,
	AuthAlgHMACSHA2256: transform.IntegHMACSHA2_256_128,
	AuthAlgHMACSHA2384: transform.IntegHMACSHA2_384_192,
	AuthAlgHMACSHA2512: transform.IntegHMACSHA2_512_256,
	AuthAlgAESXCBC:     transform.IntegAESXCBC96,
}

// espCiphers are the ESP transform IDs we negotiate; each equals the
// IKEv2 ENCR ID.
var espCiphers = map[TransformID]transform.ID{
	ESP3DES:     transform.Encr3DES,
	ESPNull:     transform.EncrNull,
	ESPAES:      transform.EncrAESCBC,
	ESPAESCTR:   transform.EncrAESCTR,
	ESPAESGCM8:  transform.EncrAESGCM8,
	ESPAESGCM12: transform.EncrAESGCM12,
	ESPAESGCM16: transform.EncrAESGCM16,
}

// basic returns the value of an attribute that must be TV.
func basic(a Attribute, what string) (uint16, error) {
	if !a.TV {
		return 0, newErr(ATTRIBUTES_NOT_SUPPORTED, -1, what+" attribute in variable-length form")
	}
	return a.Value, nil
}

func attrRefused(reason string) error { return newErr(ATTRIBUTES_NOT_SUPPORTED, -1, reason) }

// phase1Transform maps one phase 1 transform.
func phase1Transform(t Transform) (Phase1Offer, error) {
	var o Phase1Offer
	if t.ID != KeyIKE {
		return o, newErr(INVALID_TRANSFORM_ID, -1, "phase 1 transform ID "+itoa(int(t.ID))+", not KEY_IKE")
	}
	var encr, prf, integ, ke transform.Transform
	var keyLen uint16
	var pending LifeType
	seen := map[AttrType]bool{}
	for _, a := range t.Attrs {
		if a.Type != P1LifeType && a.Type != P1LifeDuration {
			if seen[a.Type] {
				return o, badSyntax(-1, "attribute "+itoa(int(a.Type))+" given twice")
			}
			seen[a.Type] = true
		}
		switch a.Type {
		case P1Encryption:
			v, err := basic(a, "encryption algorithm")
			if err != nil {
				return o, err
			}
			switch EncrAlg(v) {
			case Encr3DESCBC:
				encr = transform.Transform{Type: transform.TypeENCR, ID: transform.Encr3DES}
			case EncrAESCBC:
				encr = transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC}
			case EncrDESCBC:
				return o, attrRefused("single DES is refused: its 56-bit key is broken")
			default:
				return o, attrRefused("phase 1 encryption algorithm " + itoa(int(v)) + " not supported (3DES-CBC and AES-CBC are)")
			}
		case P1Hash:
			v, err := basic(a, "hash algorithm")
			if err != nil {
				return o, err
			}
			h, ok := phase1Hashes[HashAlg(v)]
			if !ok {
				return o, attrRefused("phase 1 hash algorithm " + itoa(int(v)) + " not supported (MD5, SHA-1 and SHA-2 are)")
			}
			prf = transform.Transform{Type: transform.TypePRF, ID: h[0]}
			integ = transform.Transform{Type: transform.TypeINTEG, ID: h[1]}
		case P1AuthMethod:
			v, err := basic(a, "authentication method")
			if err != nil {
				return o, err
			}
			o.Auth = AuthMethod(v)
		case P1Group:
			v, err := basic(a, "group description")
			if err != nil {
				return o, err
			}
			g, err := group(v)
			if err != nil {
				return o, err
			}
			ke = transform.Transform{Type: transform.TypeKE, ID: g}
		case P1KeyLength:
			v, err := basic(a, "key length")
			if err != nil {
				return o, err
			}
			keyLen = v
		case P1LifeType, P1LifeDuration:
			if err := o.Life.take(a, P1LifeType, P1LifeDuration, &pending); err != nil {
				return o, err
			}
		case P1GroupType, P1GroupPrime, P1GroupGen1, P1GroupGen2, P1GroupCurveA, P1GroupCurveB, P1FieldSize, P1GroupOrder:
			return o, attrRefused("private Diffie-Hellman groups (attribute " + itoa(int(a.Type)) + ") not supported")
		case P1PRF:
			return o, attrRefused("phase 1 PRF attribute not supported (none is defined; the PRF is the HMAC of the hash)")
		default:
			return o, attrRefused("unknown phase 1 attribute " + itoa(int(a.Type)))
		}
	}
	if pending != 0 {
		return o, badSyntax(-1, "life type without a life duration")
	}
	if encr.ID == 0 || prf.ID == 0 || ke.ID == 0 || o.Auth == 0 {
		return o, badSyntax(-1, "phase 1 transform without encryption, hash, authentication method or group (RFC 2409 §5 makes all four mandatory)")
	}
	if encr.ID == transform.EncrAESCBC && keyLen == 0 {
		// Early drafts of RFC 3602 allowed AES-128 without a Key
		// Length attribute, and some implementations still send that
		// (strongSwan accepts it the same way).
		keyLen = 128
	}
	encr.KeyLen = keyLen
	if _, err := transform.Lookup(encr); err != nil {
		return o, &Error{Notify: ATTRIBUTES_NOT_SUPPORTED, Reason: "key length " + itoa(int(keyLen)), Offset: -1, Err: err}
	}
	if o.Auth != AuthPSK {
		return o, attrRefused(o.Auth.String() + " not supported: ipsecgw authenticates IKEv1 with pre-shared keys only")
	}
	o.Proposal = shared.Proposal{Protocol: shared.ProtoIKE, Transforms: []transform.Transform{encr, prf, integ, ke}}
	return o, nil
}

// Phase1Offers maps the transforms of a received phase 1 SA payload (main
// or aggressive mode message 1) to offers, one per transform, in the
// peer's order of preference, and lists the transforms it refused. An
// error is returned only when the SA holds nothing to choose from at all
// (NO-PROPOSAL-CHOSEN with the first refusal as cause).
func Phase1Offers(sa SA) ([]Phase1Offer, []Refused, error) {
	var offers []Phase1Offer
	var refused []Refused
	for _, p := range sa.Proposals {
		for _, t := range p.Transforms {
			var o Phase1Offer
			var err error
			switch {
			case p.Protocol != ProtoISAKMP:
				err = newErr(INVALID_PROTOCOL_ID, -1, "phase 1 proposal for "+p.Protocol.String())
			case len(offers) == maxOffers:
				err = badSyntax(-1, "more than 255 transforms")
			default:
				o, err = phase1Transform(t)
			}
			if err != nil {
				refused = append(refused, Refused{p.Number, t.Number, err})
				continue
			}
			o.ProposalNumber, o.TransformNumber = p.Number, t.Number
			o.Proposal.Number = uint8(len(offers) + 1)
			offers = append(offers, o)
		}
	}
	return offers, refused, noneAcceptable(len(offers), refused)
}

func noneAcceptable(n int, refused []Refused) error {
	if n > 0 {
		return nil
	}
	e := &Error{Notify: NO_PROPOSAL_CHOSEN, Reason: "no acceptable transform", Offset: -1}
	if len(refused) > 0 {
		e.Reason += " (first refusal: proposal " + itoa(int(refused[0].ProposalNumber)) + " transform " + itoa(int(refused[0].TransformNumber)) + ")"
		e.Err = refused[0].Err
	}
	return e
}

// phase2Transform maps one ESP transform.
func phase2Transform(t Transform) (Phase2Offer, error) {
	var o Phase2Offer
	id, ok := espCiphers[t.ID]
	switch {
	case t.ID == ESPDES:
		return o, newErr(INVALID_TRANSFORM_ID, -1, "ESP_DES is refused: its 56-bit key is broken")
	case !ok:
		return o, newErr(INVALID_TRANSFORM_ID, -1, "ESP transform "+itoa(int(t.ID))+" not supported")
	}
	encr := transform.Transform{Type: transform.TypeENCR, ID: id}
	o, integ, ke, esn, keyLen, err := phase2Attrs(t)
	if err != nil {
		return o, err
	}
	encr.KeyLen = keyLen
	if encr.ID == transform.EncrAESCBC && encr.KeyLen == 0 {
		encr.KeyLen = 128 // as in phase 1: AES-128 without Key Length from old peers
	}
	info, err := transform.Lookup(encr)
	if err != nil {
		return o, &Error{Notify: ATTRIBUTES_NOT_SUPPORTED, Reason: "ESP cipher", Offset: -1, Err: err}
	}
	if info.AEAD && integ.ID != 0 {
		return o, attrRefused(info.Name + " is an AEAD cipher and takes no authentication algorithm (RFC 4106 §8.3)")
	}
	ts := []transform.Transform{encr}
	if integ.ID != 0 {
		ts = append(ts, integ)
	}
	if ke.ID != 0 {
		ts = append(ts, ke)
	}
	o.Proposal = shared.Proposal{Protocol: shared.ProtoESP, Transforms: append(ts, esn)}
	return o, nil
}

// phase2Attrs reads the SA attributes of a quick mode transform (ESP or
// AH): life, PFS group, encapsulation mode, authentication algorithm, key
// length and ESN.
func phase2Attrs(t Transform) (o Phase2Offer, integ, ke, esn transform.Transform, keyLen uint16, err error) {
	esn = transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo}
	var pending LifeType
	seen := map[AttrType]bool{}
	for _, a := range t.Attrs {
		if a.Type != P2LifeType && a.Type != P2LifeDuration {
			if seen[a.Type] {
				return o, integ, ke, esn, 0, badSyntax(-1, "attribute "+itoa(int(a.Type))+" given twice")
			}
			seen[a.Type] = true
		}
		switch a.Type {
		case P2LifeType, P2LifeDuration:
			if err := o.Life.take(a, P2LifeType, P2LifeDuration, &pending); err != nil {
				return o, integ, ke, esn, 0, err
			}
		case P2Group:
			v, err := basic(a, "group description")
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			g, err := group(v)
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			ke = transform.Transform{Type: transform.TypeKE, ID: g}
		case P2EncapMode:
			v, err := basic(a, "encapsulation mode")
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			if !EncapMode(v).Known() {
				return o, integ, ke, esn, 0, attrRefused(EncapMode(v).String() + " not supported")
			}
			o.Mode = EncapMode(v)
		case P2AuthAlgorithm:
			v, err := basic(a, "authentication algorithm")
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			i, ok := phase2Auth[AuthAlg(v)]
			if !ok {
				return o, integ, ke, esn, 0, attrRefused("authentication algorithm " + itoa(int(v)) + " not supported")
			}
			integ = transform.Transform{Type: transform.TypeINTEG, ID: i}
		case P2KeyLength:
			v, err := basic(a, "key length")
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			keyLen = v
		case P2ESN:
			v, err := basic(a, "extended sequence number")
			if err != nil {
				return o, integ, ke, esn, 0, err
			}
			if v != 1 {
				return o, integ, ke, esn, 0, attrRefused("extended sequence number attribute " + itoa(int(v)))
			}
			esn.ID = transform.ESNYes
		default:
			return o, integ, ke, esn, 0, attrRefused("phase 2 attribute " + itoa(int(a.Type)) + " not supported")
		}
	}
	if pending != 0 {
		return o, integ, ke, esn, 0, badSyntax(-1, "life type without a life duration")
	}
	return o, integ, ke, esn, keyLen, nil
}

// Phase2Offers maps the transforms of a received quick mode SA payload to
// offers (ESP and AH), one per transform, in the peer's order of preference, and lists
// what it refused: IPComp proposals, bundles (several proposal
// payloads with one number, RFC 2408 §4.2: all of them together) and
// transforms with attributes we do not support. Each offer's SPI is the
// peer's inbound SPI from its proposal (4 bytes). An error is returned
// only when nothing is acceptable.
func Phase2Offers(sa SA) ([]Phase2Offer, []Refused, error) {
	var offers []Phase2Offer
	var refused []Refused
	for i, p := range sa.Proposals {
		bundle := (i > 0 && sa.Proposals[i-1].Number == p.Number) ||
			(i+1 < len(sa.Proposals) && sa.Proposals[i+1].Number == p.Number)
		for _, t := range p.Transforms {
			var o Phase2Offer
			var err error
			switch {
			case bundle:
				err = newErr(NO_PROPOSAL_CHOSEN, -1, "proposal "+itoa(int(p.Number))+" combines several protocols (AND bundle), which is not supported")
			case p.Protocol != ProtoESP && p.Protocol != ProtoAH:
				err = newErr(INVALID_PROTOCOL_ID, -1, p.Protocol.String()+" proposals are not supported, only ESP and AH")
			case len(p.SPI) != 4:
				err = newErr(INVALID_SPI, -1, p.Protocol.String()+" proposal with a "+itoa(len(p.SPI))+"-byte SPI")
			case len(offers) == maxOffers:
				err = badSyntax(-1, "more than 255 transforms")
			case p.Protocol == ProtoAH:
				o, err = phase2AHTransform(t)
			default:
				o, err = phase2Transform(t)
			}
			if err != nil {
				refused = append(refused, Refused{p.Number, t.Number, err})
				continue
			}
			o.ProposalNumber, o.TransformNumber = p.Number, t.Number
			o.Proposal.Number = uint8(len(offers) + 1)
			o.Proposal.SPI = p.SPI
			offers = append(offers, o)
		}
	}
	return offers, refused, noneAcceptable(len(offers), refused)
}

// Proposals1 returns the common-form proposals of phase 1 offers, for
// shared.Select.
func Proposals1(offers []Phase1Offer) []shared.Proposal {
	out := make([]shared.Proposal, len(offers))
	for i, o := range offers {
		out[i] = o.Proposal
	}
	return out
}

// Proposals2 returns the common-form proposals of quick mode offers, for
// shared.Select.
func Proposals2(offers []Phase2Offer) []shared.Proposal {
	out := make([]shared.Proposal, len(offers))
	for i, o := range offers {
		out[i] = o.Proposal
	}
	return out
}

// Answer returns the SA payload a responder sends back (RFC 2408 §4.2,
// RFC 2409 §5): the peer's SA with only the chosen proposal and, in it,
// only the chosen transform, unchanged. spi replaces the proposal's SPI
// (in quick mode the responder's inbound SPI); nil keeps the peer's (phase
// 1, whose proposals carry none). Bundles (several proposal payloads with
// the chosen number) are not answered.
func (sa SA) Answer(proposalNumber, transformNumber uint8, spi []byte) (SA, error) {
	var chosen *Proposal
	for i := range sa.Proposals {
		if sa.Proposals[i].Number != proposalNumber {
			continue
		}
		if chosen != nil {
			return SA{}, newErr(NO_PROPOSAL_CHOSEN, -1, "proposal "+itoa(int(proposalNumber))+" is a bundle")
		}
		chosen = &sa.Proposals[i]
	}
	if chosen == nil {
		return SA{}, newErr(NO_PROPOSAL_CHOSEN, -1, "no proposal "+itoa(int(proposalNumber)))
	}
	for _, t := range chosen.Transforms {
		if t.Number != transformNumber {
			continue
		}
		p := Proposal{Number: chosen.Number, Protocol: chosen.Protocol, SPI: chosen.SPI, Transforms: []Transform{t}}
		if spi != nil {
			p.SPI = spi
		}
		return SA{DOI: sa.DOI, Situation: sa.Situation, Proposals: []Proposal{p}}, nil
	}
	return SA{}, newErr(NO_PROPOSAL_CHOSEN, -1, "proposal "+itoa(int(proposalNumber))+" has no transform "+itoa(int(transformNumber)))
}

// singleAnswer checks the shape of a responder's SA: one proposal with one
// transform (RFC 2409 §5: the responder "MUST NOT" return more than the
// one it chose).
func singleAnswer(answer SA) error {
	if len(answer.Proposals) != 1 || len(answer.Proposals[0].Transforms) != 1 {
		return badSyntax(-1, "the responder's SA payload must hold exactly one proposal with one transform")
	}
	return nil
}

// sameTransforms compares the transform lists of two proposals as sets.
func sameTransforms(a, b []transform.Transform) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range a {
		if !slices.Contains(b, t) {
			return false
		}
	}
	return true
}

// Phase1Answer checks the SA payload of the responder's main or
// aggressive mode message 2 against the SA we offered: it must be one of
// our transforms (same algorithms and authentication method; numbers are
// not compared, since implementations renumber). It returns the chosen
// offer as the responder sent it (its lifetimes count), with
// Proposal.Number set to the matching position in Phase1Offers(offered).
// A mismatch is NO-PROPOSAL-CHOSEN.
func Phase1Answer(offered, answer SA) (Phase1Offer, error) {
	if err := singleAnswer(answer); err != nil {
		return Phase1Offer{}, err
	}
	got, _, err := Phase1Offers(answer)
	if err != nil {
		return Phase1Offer{}, err
	}
	ours, _, _ := Phase1Offers(offered)
	for _, o := range ours {
		if o.Auth == got[0].Auth && sameTransforms(o.Proposal.Transforms, got[0].Proposal.Transforms) {
			a := got[0]
			a.Proposal.Number = o.Proposal.Number
			return a, nil
		}
	}
	return Phase1Offer{}, newErr(NO_PROPOSAL_CHOSEN, -1, "the responder chose a transform we did not offer")
}

// Phase2Answer is Phase1Answer for quick mode: the responder's transform
// must be one of ours with the same encapsulation mode. The returned
// offer's SPI is the responder's inbound SPI.
func Phase2Answer(offered, answer SA) (Phase2Offer, error) {
	if err := singleAnswer(answer); err != nil {
		return Phase2Offer{}, err
	}
	got, _, err := Phase2Offers(answer)
	if err != nil {
		return Phase2Offer{}, err
	}
	ours, _, _ := Phase2Offers(offered)
	for _, o := range ours {
		if o.Mode == got[0].Mode && sameTransforms(o.Proposal.Transforms, got[0].Proposal.Transforms) {
			a := got[0]
			a.Proposal.Number = o.Proposal.Number
			return a, nil
		}
	}
	return Phase2Offer{}, newErr(NO_PROPOSAL_CHOSEN, -1, "the responder chose a transform we did not offer")
}

// ErrNoIKEv1Transforms is returned by Phase1SA and Phase2SA when the
// configured proposals hold nothing IKEv1 can express.
var ErrNoIKEv1Transforms = errors.New("isakmp: no configured proposal can be expressed in IKEv1")

// ikev1Encr maps a configured phase 1 cipher to the Encryption Algorithm
// attribute.
func ikev1Encr(t config.Transform) (EncrAlg, bool) {
	switch transform.ID(t.ID) {
	case transform.Encr3DES:
		return Encr3DESCBC, true
	case transform.EncrAESCBC:
		return EncrAESCBC, t.KeyLen != 0
	}
	return 0, false
}

// ikev1Hash maps a configured integrity algorithm to the phase 1 hash.
func ikev1Hash(id uint16) (HashAlg, bool) {
	for h, m := range phase1Hashes {
		if m[1] == transform.ID(id) {
			return h, true
		}
	}
	return 0, false
}

// Phase1SA renders the configured IKE proposals (ike=) as the SA payload
// an initiator sends in main or aggressive mode message 1: one proposal
// (RFC 2409 §5 allows only one in phase 1) whose transforms are, for each
// configured proposal in order, every combination of its ciphers, hashes
// and groups that IKEv1 can express (3DES-CBC or AES-CBC; MD5, SHA-1 or
// SHA-2 integrity, whose hash is also the PRF; the groups of
// Phase1Offers), cipher-major, up to 255 transforms. Configured PRFs are
// not used: in IKEv1 the PRF is the HMAC of the hash. Each transform
// carries auth and life. In aggressive mode, where the KE payload goes
// with the SA, pass only proposals with the group of that KE payload.
func Phase1SA(ps []config.Proposal, auth AuthMethod, life Lifetime) (SA, error) {
	p := Proposal{Number: 1, Protocol: ProtoISAKMP}
	for _, cp := range ps {
		if cp.Protocol != config.ProtoIKE {
			continue
		}
		for _, e := range cp.Of(config.TransformENCR) {
			ea, ok := ikev1Encr(e)
			if !ok {
				continue
			}
			for _, i := range cp.Of(config.TransformINTEG) {
				h, ok := ikev1Hash(i.ID)
				if !ok {
					continue
				}
				for _, k := range cp.Of(config.TransformKE) {
					if _, err := group(k.ID); err != nil || len(p.Transforms) == maxOffers {
						continue
					}
					attrs := []Attribute{BasicAttr(P1Encryption, uint16(ea))}
					if ea == EncrAESCBC {
						attrs = append(attrs, BasicAttr(P1KeyLength, e.KeyLen))
					}
					attrs = append(attrs, BasicAttr(P1Hash, uint16(h)), BasicAttr(P1Group, k.ID), BasicAttr(P1AuthMethod, uint16(auth)))
					attrs = append(attrs, life.attributes(true)...)
					p.Transforms = append(p.Transforms, Transform{Number: uint8(len(p.Transforms) + 1), ID: KeyIKE, Attrs: attrs})
				}
			}
		}
	}
	if len(p.Transforms) == 0 {
		return SA{}, ErrNoIKEv1Transforms
	}
	return SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{p}}, nil
}

// espTransformID maps a configured ESP cipher to its transform ID.
func espTransformID(id uint16) (TransformID, bool) {
	for t, e := range espCiphers {
		if e == transform.ID(id) {
			return t, true
		}
	}
	return 0, false
}

// ikev1AuthAlg maps a configured integrity algorithm to the phase 2
// Authentication Algorithm.
func ikev1AuthAlg(id uint16) (AuthAlg, bool) {
	for a, i := range phase2Auth {
		if i == transform.ID(id) {
			return a, true
		}
	}
	return 0, false
}

// PFSGroup is the PFS group Phase2SA offers for the configured ESP (or
// AH) proposals: the first group of the first proposal that names one
// (transform.KENone for none). IKEv1 quick mode carries at most one KE
// payload, so all transforms of one offer use one group.
func PFSGroup(ps []config.Proposal) transform.ID {
	for _, cp := range ps {
		if cp.Protocol != config.ProtoESP && cp.Protocol != config.ProtoAH {
			continue
		}
		for _, k := range cp.Of(config.TransformKE) {
			if k.ID != config.KENone {
				return transform.ID(k.ID)
			}
		}
	}
	return transform.KENone
}

// Phase2SA renders the configured ESP proposals (esp=) as the SA payload
// of quick mode message 1: one ESP proposal with our inbound SPI whose
// transforms are, for each configured proposal in order, every
// combination of its ciphers, integrity algorithms (none for AEAD
// ciphers) and ESN choices, up to 255, each with the PFS group
// PFSGroup(ps) (proposals that do not allow that group are left out), the
// encapsulation mode and life. It returns the group the engine sends a
// KE payload for, KENone without PFS.
func Phase2SA(ps []config.Proposal, spi uint32, mode EncapMode, life Lifetime) (SA, transform.ID, error) {
	if len(ps) > 0 && ps[0].Protocol == config.ProtoAH {
		return phase2AHSA(ps, spi, mode, life)
	}
	pfs := PFSGroup(ps)
	spiBytes := []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi)}
	p := Proposal{Number: 1, Protocol: ProtoESP, SPI: spiBytes}
	for _, cp := range ps {
		if cp.Protocol != config.ProtoESP || !allowsGroup(cp, pfs) {
			continue
		}
		esns := cp.Of(config.TransformESN)
		if len(esns) == 0 {
			esns = []config.Transform{{Type: config.TransformESN, ID: uint16(transform.ESNNo)}}
		}
		for _, e := range cp.Of(config.TransformENCR) {
			tid, ok := espTransformID(e.ID)
			if !ok {
				continue
			}
			info, err := transform.Lookup(transform.Transform{Type: transform.TypeENCR, ID: transform.ID(e.ID), KeyLen: e.KeyLen})
			if err != nil {
				continue
			}
			var auths []AuthAlg
			if !info.AEAD {
				for _, i := range cp.Of(config.TransformINTEG) {
					if a, ok := ikev1AuthAlg(i.ID); ok {
						auths = append(auths, a)
					}
				}
				if len(auths) == 0 {
					continue
				}
			} else {
				auths = []AuthAlg{0}
			}
			for _, a := range auths {
				for _, esn := range esns {
					if len(p.Transforms) == maxOffers {
						continue
					}
					var attrs []Attribute
					if e.KeyLen != 0 {
						attrs = append(attrs, BasicAttr(P2KeyLength, e.KeyLen))
					}
					if a != 0 {
						attrs = append(attrs, BasicAttr(P2AuthAlgorithm, uint16(a)))
					}
					if pfs != transform.KENone {
						attrs = append(attrs, BasicAttr(P2Group, uint16(pfs)))
					}
					attrs = append(attrs, BasicAttr(P2EncapMode, uint16(mode)))
					attrs = append(attrs, life.attributes(false)...)
					if transform.ID(esn.ID) == transform.ESNYes {
						attrs = append(attrs, BasicAttr(P2ESN, 1))
					}
					p.Transforms = append(p.Transforms, Transform{Number: uint8(len(p.Transforms) + 1), ID: tid, Attrs: attrs})
				}
			}
		}
	}
	if len(p.Transforms) == 0 {
		return SA{}, 0, ErrNoIKEv1Transforms
	}
	return SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{p}}, pfs, nil
}

// allowsGroup reports whether a configured ESP proposal accepts PFS group
// g (KENone: no PFS).
func allowsGroup(cp config.Proposal, g transform.ID) bool {
	kes := cp.Of(config.TransformKE)
	if len(kes) == 0 {
		return g == transform.KENone
	}
	return slices.ContainsFunc(kes, func(k config.Transform) bool { return transform.ID(k.ID) == g })
}
