package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
)

// A minimal client of strongSwan's VICI protocol (the wire format of
// swanctl, documented in strongSwan's src/libcharon/plugins/vici/README.md):
// enough to fire "initiate" requests without waiting for their outcome and
// to count "child-updown" events. Running one swanctl process per
// connection would cost the shared 2 cores more than the IKE work measured,
// and swanctl's --initiate waits for each result.
//
// A packet is a 32-bit big-endian length and that many bytes: a type byte,
// for named types a length-prefixed name, then a message of elements.

// Packet types.
const (
	viciCmdRequest      = 0
	viciCmdResponse     = 1
	viciCmdUnknown      = 2
	viciEventRegister   = 3
	viciEventUnregister = 4
	viciEventConfirm    = 5
	viciEventUnknown    = 6
	viciEvent           = 7
)

// Message element types.
const (
	viciSectionStart = 1
	viciSectionEnd   = 2
	viciKeyValue     = 3
	viciListStart    = 4
	viciListItem     = 5
	viciListEnd      = 6
)

// viciMsg is a flat message: the keys of nested sections are joined with
// '.', list items are kept in order under the list's key.
type viciMsg map[string][]string

func (m viciMsg) get(key string) string {
	if v := m[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// encodeVICI appends a flat message of key/value pairs (no sections).
func encodeVICI(b []byte, kv [][2]string) []byte {
	for _, p := range kv {
		b = append(b, viciKeyValue, byte(len(p[0])))
		b = append(b, p[0]...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p[1])))
		b = append(b, p[1]...)
	}
	return b
}

// decodeVICI parses a message into its flat form.
func decodeVICI(b []byte) (viciMsg, error) {
	m := viciMsg{}
	var path []string
	list := ""
	name := func() (string, error) {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return "", errors.New("vici: short name")
		}
		n := string(b[1 : 1+b[0]])
		b = b[1+b[0]:]
		return n, nil
	}
	value := func() (string, error) {
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b)) {
			return "", errors.New("vici: short value")
		}
		n := int(binary.BigEndian.Uint16(b))
		v := string(b[2 : 2+n])
		b = b[2+n:]
		return v, nil
	}
	key := func(k string) string { return strings.Join(append(path[:len(path):len(path)], k), ".") }
	for len(b) > 0 {
		t := b[0]
		b = b[1:]
		switch t {
		case viciSectionStart:
			n, err := name()
			if err != nil {
				return nil, err
			}
			path = append(path, n)
		case viciSectionEnd:
			if len(path) == 0 {
				return nil, errors.New("vici: unbalanced section end")
			}
			path = path[:len(path)-1]
		case viciKeyValue:
			n, err := name()
			if err != nil {
				return nil, err
			}
			v, err := value()
			if err != nil {
				return nil, err
			}
			m[key(n)] = append(m[key(n)], v)
		case viciListStart:
			n, err := name()
			if err != nil {
				return nil, err
			}
			list = key(n)
		case viciListItem:
			v, err := value()
			if err != nil {
				return nil, err
			}
			m[list] = append(m[list], v)
		case viciListEnd:
			list = ""
		default:
			return nil, fmt.Errorf("vici: element type %d", t)
		}
	}
	return m, nil
}

// viciConn is one session with a charon. Requests are answered in order;
// events of a registered type arrive between responses.
type viciConn struct {
	c  net.Conn
	r  *bufio.Reader
	mu sync.Mutex // one request at a time
}

func dialVICI(path string) (*viciConn, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, err
	}
	return &viciConn{c: c, r: bufio.NewReaderSize(c, 64<<10)}, nil
}

func (v *viciConn) Close() error { return v.c.Close() }

func (v *viciConn) send(typ byte, name string, msg []byte) error {
	b := make([]byte, 4, 4+2+len(name)+len(msg))
	b = append(b, typ)
	if name != "" {
		b = append(b, byte(len(name)))
		b = append(b, name...)
	}
	b = append(b, msg...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	_, err := v.c.Write(b)
	return err
}

// read returns the next packet's type, name (for named types) and message.
func (v *viciConn) read() (byte, string, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(v.r, hdr[:]); err != nil {
		return 0, "", nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(v.r, b); err != nil {
		return 0, "", nil, err
	}
	if len(b) == 0 {
		return 0, "", nil, errors.New("vici: empty packet")
	}
	typ, b := b[0], b[1:]
	name := ""
	if typ == viciEvent {
		if len(b) < 1 || len(b) < 1+int(b[0]) {
			return 0, "", nil, errors.New("vici: short event name")
		}
		name, b = string(b[1:1+b[0]]), b[1+b[0]:]
	}
	return typ, name, b, nil
}

// request sends a command and returns its response; events that arrive
// meanwhile are handed to onEvent (nil drops them).
func (v *viciConn) request(cmd string, kv [][2]string, onEvent func(string, viciMsg)) (viciMsg, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.send(viciCmdRequest, cmd, encodeVICI(nil, kv)); err != nil {
		return nil, err
	}
	for {
		typ, name, b, err := v.read()
		if err != nil {
			return nil, err
		}
		switch typ {
		case viciCmdResponse:
			return decodeVICI(b)
		case viciCmdUnknown:
			return nil, fmt.Errorf("vici: unknown command %q", cmd)
		case viciEvent:
			if onEvent != nil {
				m, err := decodeVICI(b)
				if err != nil {
					return nil, err
				}
				onEvent(name, m)
			}
		default:
			return nil, fmt.Errorf("vici: unexpected packet type %d after %s", typ, cmd)
		}
	}
}

// register subscribes to an event type on this session.
func (v *viciConn) register(event string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if err := v.send(viciEventRegister, event, nil); err != nil {
		return err
	}
	// The register packet carries the event name the way a command does.
	typ, _, _, err := v.read()
	if err != nil {
		return err
	}
	switch typ {
	case viciEventConfirm:
		return nil
	case viciEventUnknown:
		return fmt.Errorf("vici: unknown event %q", event)
	default:
		return fmt.Errorf("vici: unexpected packet type %d registering %s", typ, event)
	}
}

// events reads packets until the connection fails, handing every event to
// f. Only for a session that sends no more requests.
func (v *viciConn) events(f func(string, viciMsg)) error {
	for {
		typ, name, b, err := v.read()
		if err != nil {
			return err
		}
		if typ != viciEvent {
			continue
		}
		m, err := decodeVICI(b)
		if err != nil {
			return err
		}
		f(name, m)
	}
}
