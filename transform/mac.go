package transform

// Integrity-only use of a Protector, for AH (RFC 4302): the ICV sits in the
// middle of the packet (in the AH header), so the Seal/Open layout with the
// ICV at the end does not fit. AH builds its Protector with ENCR_NULL and
// the negotiated integrity algorithm (NewAuthProtector) and calls
// Authenticate and Verify with the bytes to authenticate.

// NewAuthProtector builds an integrity-only Protector (AH): ENCR_NULL with
// integ keyed by integKey (KeymatLen(integ) bytes, copied). Only
// Authenticate, Verify, ICVSize and Close are meaningful on it.
func NewAuthProtector(integ Transform, integKey []byte) (*Protector, error) {
	return NewProtector(Transform{Type: TypeENCR, ID: EncrNull}, integ, nil, integKey)
}

// Authenticate writes the ICV of data followed by trailer (the truncated
// MAC, ICVSize bytes) into icv. The caller has already put the data into
// the form the protocol authenticates (AH: mutable fields and the ICV field
// zeroed). It does not allocate.
func (p *Protector) Authenticate(icv, data, trailer []byte) error {
	e, err := p.integOnly("authenticate", icv, trailer)
	if err != nil {
		return err
	}
	sc := p.get()
	t := sc.trailer[:copy(sc.trailer[:], trailer)]
	copy(icv, e.mac(sc, data, t))
	p.pool.Put(sc)
	return nil
}

// Verify checks in constant time that icv is the ICV of data followed by
// trailer; a mismatch is an error wrapping ErrAuthFailed (preallocated, so
// rejecting a forgery does not allocate).
func (p *Protector) Verify(icv, data, trailer []byte) error {
	e, err := p.integOnly("verify", icv, trailer)
	if err != nil {
		return err
	}
	sc := p.get()
	t := sc.trailer[:copy(sc.trailer[:], trailer)]
	ok := ctEqual(e.mac(sc, data, t), icv)
	p.pool.Put(sc)
	if !ok {
		return p.authErr
	}
	return nil
}

func (p *Protector) integOnly(op string, icv, trailer []byte) (*integEngine, error) {
	if p.closed.Load() {
		return nil, newErr(op, p.integ, ErrClosed, "")
	}
	e, ok := p.eng.(*integEngine)
	if !ok {
		return nil, newErr(op, p.encr, ErrUnsupported, "integrity-only use needs a cipher+integrity Protector")
	}
	if len(icv) != e.icv || len(trailer) > MaxTrailer {
		return nil, newErr(op, p.integ, ErrLayout, "ICV length differs from ICVSize or trailer too long")
	}
	return e, nil
}
