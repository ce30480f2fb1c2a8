package ikev2

import (
	"fmt"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/transform"
)

// DefaultFragmentSize is the largest IP datagram an IKE fragment may fill
// (strongSwan's charon.fragment_size, RFC 7383 §2.5.1's 1280 for IPv6,
// which IPv4 paths carry as well).
const DefaultFragmentSize = 1280

// fragmented remembers how the last protected request and the last
// response went out when they had to be fragmented (RFC 7383): the SA
// keeps, retransmits and replays one encoded message (its bytes stand for
// the message), and send puts the fragments on the wire in its place.
// Retransmissions reuse the same fragments, as §2.6 asks.
//
// An IKE SA holds one only while its last request or response went out in
// fragments: most never fragment, and an idle SA should not carry the
// room for it.
type fragmented struct {
	req, rsp fragSet
}

// set is where the fragments of our last request or response are kept.
func (f *fragmented) set(response bool) *fragSet {
	if response {
		return &f.rsp
	}
	return &f.req
}

type fragSet struct {
	whole []byte   // the unfragmented message the SA holds on to
	parts [][]byte // what is sent instead
}

func (s fragSet) of(pkt []byte) [][]byte {
	if len(pkt) > 0 && len(s.whole) == len(pkt) && &s.whole[0] == &pkt[0] {
		return s.parts
	}
	return nil
}

// fragmentIfNeeded is called for every protected message we encode: when
// the peer announced IKEV2_FRAGMENTATION_SUPPORTED, the conn allows
// sending fragments (fragmentation=yes, the default, or force) and the
// datagram would exceed the fragment size, the message is also encoded
// as fragments, which send uses instead.
func (sa *ikeSA) fragmentIfNeeded(h message.Header, out *transform.Protector, payloads []message.Payload, pkt []byte) error {
	response := h.Flags&message.FlagResponse != 0
	if sa.frags != nil {
		*sa.frags.set(response) = fragSet{}
		if sa.frags.req.whole == nil && sa.frags.rsp.whole == nil {
			sa.frags = nil
		}
	}
	if !sa.fragmentation || (sa.conn.Fragmentation != config.FragYes && sa.conn.Fragmentation != config.FragForce) {
		return nil
	}
	size := sa.e.cfg.FragmentSize
	if size <= 0 {
		size = DefaultFragmentSize
	}
	// IP and UDP headers, and the non-ESP marker on the NAT-T port.
	overhead := 20 + 8
	if !sa.remote.Addr().Unmap().Is4() {
		overhead = 40 + 8
	}
	if sa.local.Port() != 500 && sa.remote.Port() != 500 {
		overhead += 4
	}
	if len(pkt)+overhead <= size {
		return nil
	}
	parts, err := message.AppendFragments(nil, h, out, size-overhead, payloads...)
	if err != nil {
		return err
	}
	sa.log.Debug("message fragmented", "exchange", h.Exchange, "msgid", h.MessageID, "bytes", len(pkt), "fragments", len(parts))
	if sa.frags == nil {
		sa.frags = new(fragmented)
	}
	*sa.frags.set(response) = fragSet{whole: pkt, parts: parts}
	return nil
}

// fragmentsOf returns the fragments that stand for an encoded message, or
// nil when it goes out whole.
func (sa *ikeSA) fragmentsOf(pkt []byte) [][]byte {
	if sa.frags == nil {
		return nil
	}
	if p := sa.frags.req.of(pkt); p != nil {
		return p
	}
	return sa.frags.rsp.of(pkt)
}

// Reassembly limits (RFC 7383 §2.6.1 leaves them to the implementation).
// Fragments are only kept after their integrity check, so only the
// authenticated peer can make us hold them; these bound what even a
// broken or hostile peer can pin per IKE SA: strongSwan's limit of 255
// fragments, and at most 64 KiB of held datagrams (the largest IKE
// message a UDP datagram could have carried whole).
const (
	maxFragments  = 255
	maxReassembly = 64 << 10
)

// reassembly holds the verified fragments of the message being received.
type reassembly struct {
	msg   *message.Reassembly
	id    uint32 // its message ID
	bytes int    // datagram bytes held, bounded by maxReassembly
}

// add takes a verified fragment of message m; once the last one is in it
// completes m with the whole message's inner payloads (and plaintext) and
// reports true. A fragment of another message ID starts over; one that
// breaks a limit abandons the message.
func (r *reassembly) add(m *message.Message, fh message.FragmentHeader, part []byte) (bool, error) {
	if r.msg == nil || r.id != m.Header.MessageID {
		*r = reassembly{msg: new(message.Reassembly), id: m.Header.MessageID}
	}
	if err := r.limit(fh.Total, len(m.Raw)); err != nil {
		*r = reassembly{}
		return false, err
	}
	complete, err := r.msg.Add(m, fh, part)
	if err != nil || !complete {
		return false, err
	}
	err = r.msg.Complete(m)
	*r = reassembly{}
	return err == nil, err
}

// limit accounts a verified fragment of a datagram of n bytes (kept until
// the message is complete) and refuses it when it breaks a limit.
func (r *reassembly) limit(total uint16, n int) error {
	if total > maxFragments {
		return fmt.Errorf("message announced in %d fragments; at most %d are accepted", total, maxFragments)
	}
	r.bytes += n
	if r.bytes > maxReassembly {
		return fmt.Errorf("fragmented message over %d bytes; reassembly abandoned", maxReassembly)
	}
	return nil
}
