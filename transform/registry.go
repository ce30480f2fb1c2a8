package transform

// Info describes a supported transform with the Key Length attribute
// resolved.
type Info struct {
	Transform
	Name string // strongSwan proposal keyword, as Name returns
	// KeySize is the key in bytes (without salt). ENCR: cipher key; INTEG:
	// MAC key (RFC 4868 §2.1.1: the hash output size for HMAC-SHA2); PRF:
	// preferred key size; KE and ESN: 0.
	KeySize int
	// SaltSize is the number of extra keymat bytes after the key used as
	// salt/nonce: 4 for AES-CTR, AES-GCM and ChaCha20-Poly1305, else 0.
	SaltSize  int
	IVSize    int  // ENCR: IV bytes per packet
	BlockSize int  // ENCR: payload alignment (see Protector.BlockSize)
	ICVSize   int  // ENCR (AEAD) and INTEG: ICV bytes; PRF: output size
	AEAD      bool // ENCR: combined-mode cipher, used with IntegNone
}

// KeymatLen returns how many bytes of keying material the transform consumes:
// KeySize+SaltSize. The ESP/IKE key derivation slices KEYMAT into encryption
// keys of KeymatLen(encr) bytes (salt last, as RFC 3686/4106/5282/7634
// specify) and integrity keys of KeymatLen(integ) bytes; SK_d, SK_pi and SK_pr
// are KeymatLen(prf) bytes. KE and ESN transforms consume 0.
func KeymatLen(t Transform) (int, error) {
	in, err := Lookup(t)
	if err != nil {
		return 0, err
	}
	return in.KeySize + in.SaltSize, nil
}

// aesKeyLen validates a Key Length attribute for an AES cipher, which RFC
// 7296 §3.3.5 requires to be present.
func aesKeyLen(t Transform) (int, error) {
	switch t.KeyLen {
	case 128, 192, 256:
		return int(t.KeyLen) / 8, nil
	case 0:
		return 0, newErr("lookup", t, ErrKeyLength, "Key Length attribute required")
	}
	return 0, newErr("lookup", t, ErrKeyLength, "AES key length must be 128, 192 or 256")
}

// fixedKeyLen accepts an absent Key Length attribute, or one equal to the
// only size the algorithm has (some peers send it anyway).
func fixedKeyLen(t Transform, bytes int) error {
	if t.KeyLen != 0 && int(t.KeyLen) != bytes*8 {
		return newErr("lookup", t, ErrKeyLength, "algorithm has a fixed key length")
	}
	return nil
}

// Lookup validates t and describes it. Unknown or unimplemented transforms
// give ErrUnsupported, a wrong Key Length attribute ErrKeyLength.
func Lookup(t Transform) (Info, error) {
	in := Info{Transform: t}
	unsupported := func() (Info, error) { return Info{}, newErr("lookup", t, ErrUnsupported, "") }
	switch t.Type {
	case TypeENCR:
		switch t.ID {
		case EncrAESCBC:
			k, err := aesKeyLen(t)
			if err != nil {
				return Info{}, err
			}
			in.KeySize, in.IVSize, in.BlockSize = k, 16, 16
		case EncrAESCTR:
			k, err := aesKeyLen(t)
			if err != nil {
				return Info{}, err
			}
			in.KeySize, in.SaltSize, in.IVSize, in.BlockSize = k, 4, 8, 4
		case EncrAESGCM8, EncrAESGCM12, EncrAESGCM16:
			if t.ID == EncrAESGCM8 && !gcm8Supported {
				return unsupported()
			}
			k, err := aesKeyLen(t)
			if err != nil {
				return Info{}, err
			}
			in.KeySize, in.SaltSize, in.IVSize, in.BlockSize, in.AEAD = k, 4, 8, 4, true
			in.ICVSize = map[ID]int{EncrAESGCM8: 8, EncrAESGCM12: 12, EncrAESGCM16: 16}[t.ID]
		case EncrChaCha20Poly1305:
			if err := fixedKeyLen(t, 32); err != nil {
				return Info{}, err
			}
			in.KeySize, in.SaltSize, in.IVSize, in.BlockSize, in.ICVSize, in.AEAD = 32, 4, 8, 4, 16, true
		case Encr3DES:
			if err := fixedKeyLen(t, 24); err != nil {
				return Info{}, err
			}
			in.KeySize, in.IVSize, in.BlockSize = 24, 8, 8
		case EncrNull:
			if t.KeyLen != 0 {
				return Info{}, newErr("lookup", t, ErrKeyLength, "NULL takes no key")
			}
			in.BlockSize = 4
		default:
			return unsupported()
		}
	case TypeINTEG:
		if t.KeyLen != 0 && t.ID != IntegNone {
			return Info{}, newErr("lookup", t, ErrKeyLength, "integrity algorithms take no Key Length attribute")
		}
		sz, ok := integSizes[t.ID]
		if !ok {
			return unsupported()
		}
		in.KeySize, in.ICVSize = sz.key, sz.icv
	case TypePRF:
		if t.KeyLen != 0 {
			return Info{}, newErr("lookup", t, ErrKeyLength, "PRFs take no Key Length attribute")
		}
		p, err := NewPRF(t.ID)
		if err != nil {
			return Info{}, err
		}
		in.KeySize, in.ICVSize = p.KeySize(), p.Size()
	case TypeKE:
		if t.KeyLen != 0 {
			return Info{}, newErr("lookup", t, ErrKeyLength, "key exchange methods take no Key Length attribute")
		}
		if modpGroups[t.ID] == nil {
			switch t.ID {
			case KEECP256, KEECP384, KEECP521, KECurve25519, KECurve448:
			default:
				return unsupported()
			}
		}
	case TypeESN:
		if t.ID != ESNNo && t.ID != ESNYes || t.KeyLen != 0 {
			return unsupported()
		}
	default:
		return unsupported()
	}
	in.Name = Name(t.Type, t.ID, int(t.KeyLen))
	return in, nil
}

// integSizes lists key and ICV sizes of the integrity algorithms (RFC 2403,
// 2404, 3566, 4494 §2, 4868 §2.1.1/§2.3).
var integSizes = map[ID]struct{ key, icv int }{
	IntegNone:             {0, 0},
	IntegHMACMD5_96:       {16, 12},
	IntegHMACSHA1_96:      {20, 12},
	IntegAESXCBC96:        {16, 12},
	IntegAESCMAC96:        {16, 12},
	IntegHMACSHA2_256_128: {32, 16},
	IntegHMACSHA2_384_192: {48, 24},
	IntegHMACSHA2_512_256: {64, 32},
	IntegHMACSHA2_256_96:  {32, 12},
}

// Supported lists every supported transform of type typ, with each AES key
// length spelled out, in a sensible order of preference (strongest and
// fastest first). Daemons use it for default proposals and for diagnostics.
func Supported(typ Type) []Transform {
	var out []Transform
	add := func(id ID, keylens ...uint16) {
		if len(keylens) == 0 {
			keylens = []uint16{0}
		}
		for _, k := range keylens {
			out = append(out, Transform{Type: typ, ID: id, KeyLen: k})
		}
	}
	switch typ {
	case TypeENCR:
		add(EncrAESGCM16, 256, 192, 128)
		add(EncrChaCha20Poly1305)
		add(EncrAESGCM12, 256, 192, 128)
		if gcm8Supported {
			add(EncrAESGCM8, 256, 192, 128)
		}
		add(EncrAESCBC, 256, 192, 128)
		add(EncrAESCTR, 256, 192, 128)
		add(Encr3DES)
		add(EncrNull)
	case TypeINTEG:
		for _, id := range []ID{IntegHMACSHA2_256_128, IntegHMACSHA2_384_192, IntegHMACSHA2_512_256,
			IntegHMACSHA1_96, IntegAESXCBC96, IntegAESCMAC96, IntegHMACMD5_96, IntegHMACSHA2_256_96} {
			add(id)
		}
	case TypePRF:
		for _, id := range []ID{PRFHMACSHA2_256, PRFHMACSHA2_384, PRFHMACSHA2_512, PRFHMACSHA1,
			PRFAES128CMAC, PRFAES128XCBC, PRFHMACMD5} {
			add(id)
		}
	case TypeKE:
		for _, id := range []ID{KECurve25519, KECurve448, KEECP256, KEECP384, KEECP521, KEMODP3072, KEMODP4096,
			KEMODP2048, KEMODP6144, KEMODP8192, KEMODP1536, KEMODP1024, KEMODP768,
			KEMODP2048S256, KEMODP2048S224, KEMODP1024S160} {
			add(id)
		}
	case TypeESN:
		add(ESNNo)
		add(ESNYes)
	}
	return out
}
