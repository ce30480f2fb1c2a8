package transform

import "strconv"

// Name returns strongSwan's proposal keyword for a transform (as printed by
// "swanctl --list-sas" and accepted in ipsec.conf/swanctl.conf proposals):
// "aes128" (CBC), "aes256ctr", "aes128gcm16", "chacha20poly1305", "3des",
// "null", "md5", "sha1", "aesxcbc", "aescmac", "sha256", "sha384", "sha512",
// "sha256_96", "prfmd5", "prfsha1", "prfaesxcbc", "prfaescmac", "prfsha256",
// "prfsha384", "prfsha512", "modp2048", "modp1024s160", "ecp256", "x25519",
// "curve448", "esn", "noesn". keyLen is the Key Length attribute in bits (0
// if absent). Unknown transforms get a descriptive placeholder such as
// "encr-id-17" so that logs stay readable; Name never fails.
func Name(t Type, id ID, keyLen int) string {
	kl := strconv.Itoa(keyLen)
	switch t {
	case TypeENCR:
		switch id {
		case EncrAESCBC:
			return "aes" + kl
		case EncrAESCTR:
			return "aes" + kl + "ctr"
		case EncrAESGCM8:
			return "aes" + kl + "gcm8"
		case EncrAESGCM12:
			return "aes" + kl + "gcm12"
		case EncrAESGCM16:
			return "aes" + kl + "gcm16"
		case EncrChaCha20Poly1305:
			return "chacha20poly1305"
		case Encr3DES:
			return "3des"
		case EncrNull:
			return "null"
		}
	case TypeINTEG:
		switch id {
		case IntegNone:
			return "none"
		case IntegHMACMD5_96:
			return "md5"
		case IntegHMACSHA1_96:
			return "sha1"
		case IntegAESXCBC96:
			return "aesxcbc"
		case IntegAESCMAC96:
			return "aescmac"
		case IntegHMACSHA2_256_128:
			return "sha256"
		case IntegHMACSHA2_384_192:
			return "sha384"
		case IntegHMACSHA2_512_256:
			return "sha512"
		case IntegHMACSHA2_256_96:
			return "sha256_96"
		}
	case TypePRF:
		switch id {
		case PRFHMACMD5:
			return "prfmd5"
		case PRFHMACSHA1:
			return "prfsha1"
		case PRFAES128XCBC:
			return "prfaesxcbc"
		case PRFHMACSHA2_256:
			return "prfsha256"
		case PRFHMACSHA2_384:
			return "prfsha384"
		case PRFHMACSHA2_512:
			return "prfsha512"
		case PRFAES128CMAC:
			return "prfaescmac"
		}
	case TypeKE:
		switch id {
		case KENone:
			return "none"
		case KEMODP768:
			return "modp768"
		case KEMODP1024:
			return "modp1024"
		case KEMODP1536:
			return "modp1536"
		case KEMODP2048:
			return "modp2048"
		case KEMODP3072:
			return "modp3072"
		case KEMODP4096:
			return "modp4096"
		case KEMODP6144:
			return "modp6144"
		case KEMODP8192:
			return "modp8192"
		case KEECP256:
			return "ecp256"
		case KEECP384:
			return "ecp384"
		case KEECP521:
			return "ecp521"
		case KEMODP1024S160:
			return "modp1024s160"
		case KEMODP2048S224:
			return "modp2048s224"
		case KEMODP2048S256:
			return "modp2048s256"
		case KECurve25519:
			return "x25519"
		case KECurve448:
			return "curve448"
		case KEMLKEM512:
			return "mlkem512"
		case KEMLKEM768:
			return "mlkem768"
		case KEMLKEM1024:
			return "mlkem1024"
		}
	case TypeESN:
		switch id {
		case ESNNo:
			return "noesn"
		case ESNYes:
			return "esn"
		}
	}
	if t >= TypeADDKE1 && t <= TypeADDKE7 {
		// strongSwan's keyword for an additional key exchange: ke1_mlkem768.
		return "ke" + strconv.Itoa(int(t-TypeADDKE1)+1) + "_" + Name(TypeKE, id, 0)
	}
	return typeLower(t) + "-id-" + strconv.Itoa(int(id))
}

func typeLower(t Type) string {
	switch t {
	case TypeENCR:
		return "encr"
	case TypePRF:
		return "prf"
	case TypeINTEG:
		return "integ"
	case TypeKE:
		return "ke"
	case TypeESN:
		return "esn"
	}
	return "type" + strconv.Itoa(int(t))
}
