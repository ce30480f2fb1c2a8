package transform

// gcm8Supported tells Lookup and Supported whether ENCR_AES_GCM_8 works.
const gcm8Supported = false

// newGCM8 would build AES-GCM with an 8-byte ICV. The standard library's GCM
// only produces 12- to 16-byte tags and this package does not implement
// GHASH itself, so the transform is reported as unsupported.
func newGCM8(_ []byte) (engine, error) { return nil, nil }
