// Package pki is certificate authentication for IKE: the signatures of
// AUTH payloads (RFC 7296 §2.15 and §3.8, RFC 4754, RFC 7427), checking a
// peer's certificate chain against the trust store and CRLs, and whether
// a certificate holds an IKE identity. It knows no wire format beyond the
// AUTH data and the IANA numbers it needs, so that IKEv1 can share it.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Method is an IKEv2 Auth Method (IANA "IKEv2 Authentication Method").
type Method uint8

// The signature methods.
const (
	MethodRSA              Method = 1  // RSASSA-PKCS1-v1_5 with SHA-1 (RFC 7296 §3.8)
	MethodECDSA256         Method = 9  // ECDSA P-256 with SHA-256 (RFC 4754)
	MethodECDSA384         Method = 10 // ECDSA P-384 with SHA-384
	MethodECDSA521         Method = 11 // ECDSA P-521 with SHA-512
	MethodDigitalSignature Method = 14 // RFC 7427: an AlgorithmIdentifier says how
)

// IsSignature reports whether m is one of the methods above.
func (m Method) IsSignature() bool {
	switch m {
	case MethodRSA, MethodECDSA256, MethodECDSA384, MethodECDSA521, MethodDigitalSignature:
		return true
	}
	return false
}

// Hash is an IKEv2 hash algorithm of SIGNATURE_HASH_ALGORITHMS (RFC 7427
// §4, IANA "IKEv2 Hash Algorithms").
type Hash uint16

// Hash algorithms.
const (
	HashSHA1     Hash = 1
	HashSHA256   Hash = 2
	HashSHA384   Hash = 3
	HashSHA512   Hash = 4
	HashIdentity Hash = 5 // RFC 8420: Ed25519 signs the octets themselves
)

// Announced is the list we send in SIGNATURE_HASH_ALGORITHMS: the SHA-2
// family and Identity (for Ed25519), as strongSwan 5.9 does. SHA-1 is not
// offered: RFC 8247 deprecates it for signatures.
var Announced = []Hash{HashSHA256, HashSHA384, HashSHA512, HashIdentity}

// AppendHashes appends the SIGNATURE_HASH_ALGORITHMS notification data.
func AppendHashes(b []byte, hs []Hash) []byte {
	for _, h := range hs {
		b = append(b, byte(h>>8), byte(h))
	}
	return b
}

// ParseHashes decodes SIGNATURE_HASH_ALGORITHMS data (a trailing odd
// byte is ignored).
func ParseHashes(b []byte) []Hash {
	var hs []Hash
	for i := 0; i+1 < len(b); i += 2 {
		hs = append(hs, Hash(b[i])<<8|Hash(b[i+1]))
	}
	return hs
}

func (h Hash) crypto() crypto.Hash {
	switch h {
	case HashSHA1:
		return crypto.SHA1
	case HashSHA256:
		return crypto.SHA256
	case HashSHA384:
		return crypto.SHA384
	case HashSHA512:
		return crypto.SHA512
	}
	return 0
}

func (h Hash) String() string {
	switch h {
	case HashSHA1:
		return "sha1"
	case HashSHA256:
		return "sha256"
	case HashSHA384:
		return "sha384"
	case HashSHA512:
		return "sha512"
	case HashIdentity:
		return "identity"
	}
	return fmt.Sprintf("hash(%d)", uint16(h))
}

func digest(h crypto.Hash, msg []byte) []byte {
	switch h {
	case crypto.SHA1:
		d := sha1.Sum(msg)
		return d[:]
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return d[:]
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return d[:]
	}
	d := sha512.Sum512(msg)
	return d[:]
}

// Object identifiers of RFC 7427 Appendix A and RFC 8420.
var (
	oidRSASHA1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidRSASHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSASHA384    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSASHA512    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSAPSS       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidECDSASHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidEd25519      = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidSHA256       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	asn1NULL        = asn1.RawValue{Tag: asn1.TagNull}
	rsaPKCS1OIDs    = map[Hash]asn1.ObjectIdentifier{HashSHA256: oidRSASHA256, HashSHA384: oidRSASHA384, HashSHA512: oidRSASHA512}
	ecdsaOIDs       = map[Hash]asn1.ObjectIdentifier{HashSHA256: oidECDSASHA256, HashSHA384: oidECDSASHA384, HashSHA512: oidECDSASHA512}
	hashOIDs        = map[Hash]asn1.ObjectIdentifier{HashSHA256: oidSHA256, HashSHA384: oidSHA384, HashSHA512: oidSHA512}
	errUnsupportedK = errors.New("unsupported key type")
)

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1) with the defaults that
// RFC 7427 examples and strongSwan spell out: MGF1 with the same hash and
// a salt as long as the hash.
type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength   int                      `asn1:"explicit,tag:2,optional,default:20"`
	TrailerField int                      `asn1:"explicit,tag:3,optional,default:1"`
}

// SignOptions choose the signature scheme.
type SignOptions struct {
	// PeerHashes is the peer's SIGNATURE_HASH_ALGORITHMS; nil when it sent
	// none, which means the classic methods (1, 9-11) where they exist.
	PeerHashes []Hash
	// PSS signs RSA with RSASSA-PSS (RFC 7427 only), strongSwan's rsa/pss.
	PSS bool
}

func (o SignOptions) peerHas(h Hash) bool {
	for _, x := range o.PeerHashes {
		if x == h {
			return true
		}
	}
	return false
}

// Sign computes AUTH payload data over the signed octets (RFC 7296 §2.15)
// with key: RFC 7427 when the peer announced a hash that suits the key,
// else the key type's classic method. Ed25519 has only RFC 7427.
func Sign(key crypto.Signer, octets []byte, o SignOptions) (Method, []byte, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig := ed25519.Sign(k, octets)
		return MethodDigitalSignature, rfc7427(pkix.AlgorithmIdentifier{Algorithm: oidEd25519}, sig), nil
	case *ecdsa.PrivateKey:
		h, classic := curveHash(k.Curve)
		if h == 0 {
			return 0, nil, fmt.Errorf("ECDSA curve %s is not supported", k.Curve.Params().Name)
		}
		d := digest(h.crypto(), octets)
		r, s, err := ecdsa.Sign(rand.Reader, k, d)
		if err != nil {
			return 0, nil, err
		}
		if o.peerHas(h) {
			der, err := asn1.Marshal(struct{ R, S *big.Int }{r, s})
			if err != nil {
				return 0, nil, err
			}
			return MethodDigitalSignature, rfc7427(pkix.AlgorithmIdentifier{Algorithm: ecdsaOIDs[h]}, der), nil
		}
		// RFC 4754 §7: r and s, each as long as the curve's order.
		n := (k.Curve.Params().BitSize + 7) / 8
		sig := make([]byte, 2*n)
		r.FillBytes(sig[:n])
		s.FillBytes(sig[n:])
		return classic, sig, nil
	case *rsa.PrivateKey:
		for _, h := range []Hash{HashSHA256, HashSHA384, HashSHA512} {
			if !o.peerHas(h) {
				continue
			}
			d := digest(h.crypto(), octets)
			if o.PSS {
				sig, err := rsa.SignPSS(rand.Reader, k, h.crypto(), d, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
				if err != nil {
					return 0, nil, err
				}
				alg, err := pssAlgorithm(h)
				if err != nil {
					return 0, nil, err
				}
				return MethodDigitalSignature, rfc7427(alg, sig), nil
			}
			sig, err := rsa.SignPKCS1v15(rand.Reader, k, h.crypto(), d)
			if err != nil {
				return 0, nil, err
			}
			return MethodDigitalSignature, rfc7427(pkix.AlgorithmIdentifier{Algorithm: rsaPKCS1OIDs[h], Parameters: asn1NULL}, sig), nil
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA1, digest(crypto.SHA1, octets))
		return MethodRSA, sig, err
	}
	return 0, nil, errUnsupportedK
}

func curveHash(c elliptic.Curve) (Hash, Method) {
	switch c {
	case elliptic.P256():
		return HashSHA256, MethodECDSA256
	case elliptic.P384():
		return HashSHA384, MethodECDSA384
	case elliptic.P521():
		return HashSHA512, MethodECDSA521
	}
	return 0, 0
}

func pssAlgorithm(h Hash) (pkix.AlgorithmIdentifier, error) {
	hashAlg := pkix.AlgorithmIdentifier{Algorithm: hashOIDs[h], Parameters: asn1NULL}
	mgfParams, err := asn1.Marshal(hashAlg)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	params, err := asn1.Marshal(pssParams{
		Hash:         hashAlg,
		MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: mgfParams}},
		SaltLength:   h.crypto().Size(),
		TrailerField: 1,
	})
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: params}}, nil
}

// rfc7427 builds the Authentication Data of method 14 (RFC 7427 §3):
// the length of the AlgorithmIdentifier, the AlgorithmIdentifier, the
// signature.
func rfc7427(alg pkix.AlgorithmIdentifier, sig []byte) []byte {
	der, err := asn1.Marshal(alg)
	if err != nil || len(der) > 255 {
		// The identifiers above are fixed and short.
		panic(fmt.Sprintf("pki: AlgorithmIdentifier %v: %v", alg.Algorithm, err))
	}
	out := make([]byte, 0, 1+len(der)+len(sig))
	out = append(append(append(out, byte(len(der))), der...), sig...)
	return out
}

// Verify checks AUTH data of a signature method against the signed
// octets with the public key of the peer's certificate. The error says
// what did not fit (method and key type, the algorithm, the signature).
func Verify(pub crypto.PublicKey, m Method, data, octets []byte) error {
	switch m {
	case MethodRSA:
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("AUTH method RSA (1), but the certificate has a %s key", keyType(pub))
		}
		if rsa.VerifyPKCS1v15(k, crypto.SHA1, digest(crypto.SHA1, octets), data) != nil {
			return errors.New("the RSA signature (method 1) does not verify with the certificate's key")
		}
		return nil
	case MethodECDSA256, MethodECDSA384, MethodECDSA521:
		k, ok := pub.(*ecdsa.PublicKey)
		h, want := curveHashOf(pub)
		if !ok || want != m {
			return fmt.Errorf("AUTH method ECDSA (%d) does not fit the certificate's %s key", m, keyType(pub))
		}
		n := (k.Curve.Params().BitSize + 7) / 8
		if len(data) != 2*n {
			return fmt.Errorf("the ECDSA signature is %d bytes, want %d", len(data), 2*n)
		}
		r, s := new(big.Int).SetBytes(data[:n]), new(big.Int).SetBytes(data[n:])
		if !ecdsa.Verify(k, digest(h.crypto(), octets), r, s) {
			return fmt.Errorf("the ECDSA signature (method %d) does not verify with the certificate's key", m)
		}
		return nil
	case MethodDigitalSignature:
		return verify7427(pub, data, octets)
	}
	return fmt.Errorf("AUTH method %d is not a signature method", m)
}

func curveHashOf(pub crypto.PublicKey) (Hash, Method) {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return curveHash(k.Curve)
	}
	return 0, 0
}

func keyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA-%d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

func verify7427(pub crypto.PublicKey, data, octets []byte) error {
	if len(data) < 1 || len(data) < 1+int(data[0]) {
		return errors.New("RFC 7427 AUTH data is shorter than its AlgorithmIdentifier")
	}
	var alg pkix.AlgorithmIdentifier
	rest, err := asn1.Unmarshal(data[1:1+int(data[0])], &alg)
	if err != nil || len(rest) != 0 {
		return errors.New("RFC 7427 AUTH data: malformed AlgorithmIdentifier")
	}
	sig := data[1+int(data[0]):]
	hashOf := func(m map[Hash]asn1.ObjectIdentifier) Hash {
		for h, oid := range m {
			if oid.Equal(alg.Algorithm) {
				return h
			}
		}
		return 0
	}
	bad := func(scheme string) error {
		return fmt.Errorf("the %s signature does not verify with the certificate's %s key", scheme, keyType(pub))
	}
	mismatch := func(scheme string) error {
		return fmt.Errorf("the peer signed with %s, but its certificate has a %s key", scheme, keyType(pub))
	}
	switch {
	case alg.Algorithm.Equal(oidEd25519):
		k, ok := pub.(ed25519.PublicKey)
		if !ok {
			return mismatch("Ed25519")
		}
		if !ed25519.Verify(k, octets, sig) {
			return bad("Ed25519")
		}
		return nil
	case hashOf(ecdsaOIDs) != 0:
		h := hashOf(ecdsaOIDs)
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return mismatch("ECDSA-" + h.String())
		}
		if !ecdsa.VerifyASN1(k, digest(h.crypto(), octets), sig) {
			return bad("ECDSA-" + h.String())
		}
		return nil
	case hashOf(rsaPKCS1OIDs) != 0:
		h := hashOf(rsaPKCS1OIDs)
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return mismatch("RSA-" + h.String())
		}
		if rsa.VerifyPKCS1v15(k, h.crypto(), digest(h.crypto(), octets), sig) != nil {
			return bad("RSA-" + h.String())
		}
		return nil
	case alg.Algorithm.Equal(oidRSAPSS):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return mismatch("RSA-PSS")
		}
		var p pssParams
		if rest, err := asn1.Unmarshal(alg.Parameters.FullBytes, &p); err != nil || len(rest) != 0 {
			return errors.New("RFC 7427 RSA-PSS parameters are malformed")
		}
		var h Hash
		for x, oid := range hashOIDs {
			if oid.Equal(p.Hash.Algorithm) {
				h = x
			}
		}
		if h == 0 {
			return fmt.Errorf("RSA-PSS with hash %v, which we did not announce", p.Hash.Algorithm)
		}
		if rsa.VerifyPSS(k, h.crypto(), digest(h.crypto(), octets), sig, &rsa.PSSOptions{SaltLength: p.SaltLength, Hash: h.crypto()}) != nil {
			return bad("RSA-PSS-" + h.String())
		}
		return nil
	case alg.Algorithm.Equal(oidRSASHA1):
		return errors.New("the peer signed with RSA-SHA1 in RFC 7427 form; we announce only SHA-2 (RFC 8247)")
	}
	return fmt.Errorf("RFC 7427 signature algorithm %v is not supported", alg.Algorithm)
}
