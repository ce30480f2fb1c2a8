package ikev2

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// cookieLen is 4 bytes of secret version and a SHA-256 hash.
const cookieLen = 4 + sha256.Size

// cookieJar makes and checks stateless cookies (RFC 7296 §2.6):
//
//	Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//
// The secret is replaced every CookieSecretLifetime; a cookie made with the
// previous secret is still accepted, so an initiator that got its cookie
// just before a change is not turned away.
type cookieJar struct {
	mu       sync.Mutex
	version  uint32
	secret   [32]byte
	previous [32]byte
	hasPrev  bool
	changed  time.Time
	// issued counts the COOKIE notifies sent (stateless answers).
	issued atomic.Uint64
}

func (j *cookieJar) rotate(now time.Time) {
	if !j.changed.IsZero() && now.Sub(j.changed) < CookieSecretLifetime {
		return
	}
	if !j.changed.IsZero() {
		j.previous, j.hasPrev = j.secret, true
	}
	rand.Read(j.secret[:])
	j.version++
	j.changed = now
}

func cookieHash(secret *[32]byte, version uint32, ni []byte, ip netip.Addr, spii uint64) []byte {
	out := make([]byte, 4, cookieLen)
	binary.BigEndian.PutUint32(out, version)
	h := sha256.New()
	h.Write(ni)
	h.Write(ip.Unmap().AsSlice())
	var spi [8]byte
	binary.BigEndian.PutUint64(spi[:], spii)
	h.Write(spi[:])
	h.Write(secret[:])
	return h.Sum(out)
}

// make returns the cookie for an initiator.
func (j *cookieJar) make(now time.Time, ni []byte, ip netip.Addr, spii uint64) []byte {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rotate(now)
	return cookieHash(&j.secret, j.version, ni, ip, spii)
}

// valid checks a cookie returned by an initiator.
func (j *cookieJar) valid(now time.Time, c, ni []byte, ip netip.Addr, spii uint64) bool {
	if len(c) != cookieLen {
		return false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rotate(now)
	v := binary.BigEndian.Uint32(c)
	switch {
	case v == j.version:
		return hmac.Equal(c, cookieHash(&j.secret, v, ni, ip, spii))
	case v == j.version-1 && j.hasPrev:
		return hmac.Equal(c, cookieHash(&j.previous, v, ni, ip, spii))
	}
	return false
}
