package isakmp

import (
	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// AH in quick mode (RFC 2407 §4.4.3, §4.5): a proposal with protocol
// PROTO_IPSEC_AH whose transform ID names the integrity algorithm, with
// the matching Authentication Algorithm attribute, and no key length.

// ahTransforms maps the AH transform IDs we negotiate to the
// Authentication Algorithm each requires.
var ahTransforms = map[TransformID]AuthAlg{
	AHMD5:    AuthAlgHMACMD5,
	AHSHA:    AuthAlgHMACSHA1,
	AHSHA256: AuthAlgHMACSHA2256,
	AHSHA384: AuthAlgHMACSHA2384,
	AHSHA512: AuthAlgHMACSHA2512,
	AHXCBC:   AuthAlgAESXCBC,
}

// phase2AHTransform maps one AH transform to the common proposal form
// (INTEG, KE when the offer asks for PFS, ESN).
func phase2AHTransform(t Transform) (Phase2Offer, error) {
	want, ok := ahTransforms[t.ID]
	if !ok {
		return Phase2Offer{}, newErr(INVALID_TRANSFORM_ID, -1, "AH transform "+itoa(int(t.ID))+" not supported")
	}
	o, integ, ke, esn, keyLen, err := phase2Attrs(t)
	if err != nil {
		return o, err
	}
	switch {
	case keyLen != 0:
		return o, attrRefused("AH transform with a key length")
	case integ.ID == 0:
		// RFC 2407 §4.5: the Authentication Algorithm MUST be given for AH.
		return o, attrRefused("AH transform without the authentication algorithm attribute")
	case integ.ID != phase2Auth[want]:
		return o, attrRefused("AH transform " + itoa(int(t.ID)) + " with authentication algorithm of another hash")
	}
	ts := []transform.Transform{integ}
	if ke.ID != 0 {
		ts = append(ts, ke)
	}
	o.Proposal = shared.Proposal{Protocol: shared.ProtoAH, Transforms: append(ts, esn)}
	return o, nil
}

// ahTransformID maps a configured integrity algorithm to its AH transform
// ID and Authentication Algorithm.
func ahTransformID(id uint16) (TransformID, AuthAlg, bool) {
	for t, a := range ahTransforms {
		if phase2Auth[a] == transform.ID(id) {
			return t, a, true
		}
	}
	return 0, 0, false
}

// phase2AHSA is Phase2SA for AH proposals (ah=): one AH proposal whose
// transforms are every integrity algorithm and ESN choice of each
// configured proposal, with the PFS group, mode and life.
func phase2AHSA(ps []config.Proposal, spi uint32, mode EncapMode, life Lifetime) (SA, transform.ID, error) {
	pfs := PFSGroup(ps)
	spiBytes := []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi)}
	p := Proposal{Number: 1, Protocol: ProtoAH, SPI: spiBytes}
	for _, cp := range ps {
		if cp.Protocol != config.ProtoAH || !allowsGroup(cp, pfs) {
			continue
		}
		esns := cp.Of(config.TransformESN)
		if len(esns) == 0 {
			esns = []config.Transform{{Type: config.TransformESN, ID: uint16(transform.ESNNo)}}
		}
		for _, i := range cp.Of(config.TransformINTEG) {
			tid, auth, ok := ahTransformID(i.ID)
			if !ok {
				continue
			}
			for _, esn := range esns {
				if len(p.Transforms) == maxOffers {
					continue
				}
				attrs := []Attribute{BasicAttr(P2AuthAlgorithm, uint16(auth))}
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
	if len(p.Transforms) == 0 {
		return SA{}, 0, ErrNoIKEv1Transforms
	}
	return SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{p}}, pfs, nil
}
