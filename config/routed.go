package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Route-based conns. With kernel IPsec a route-based tunnel is a VTI or
// XFRM interface selected by a mark or interface ID; ipsecgw has no kernel
// IPsec, so a route-based conn gets a TUN device of its own and the same
// keywords choose it (see Interface). What the host routes into that
// device goes through the conn's SAs, whatever the conn's selectors of
// other conns say, and what the peer sends on them comes out of it.

// Interface is the device of a route-based conn; ID 0 means the conn is
// policy-based (the main TUN and the SPD decide).
type Interface struct {
	// ID is the interface ID: if_id_out/if_id_in, else the mark
	// (mark_out/mark_in/mark), else Libreswan's ipsec-interface number.
	// Conns with the same ID share the device.
	ID uint32
	// Name is the device's name: vti-interface= (Libreswan), else
	// "ipsec<ID>" (Libreswan's ipsec-interface naming).
	Name string
	// MarkIn, MarkOut, IfIDIn and IfIDOut are the values as written, for
	// PLUTO_MARK_IN/OUT and PLUTO_IF_ID_IN/OUT of updown scripts.
	MarkIn, MarkOut Mark
	IfIDIn, IfIDOut uint32
}

// Mark is a mark value with its mask as mark= writes it ("100/0xffffffff").
type Mark struct {
	Value, Mask uint32
}

// RouteBased reports whether the conn has a device of its own.
func (c Conn) RouteBased() bool { return c.Interface.ID != 0 }

// maxIfName is IFNAMSIZ-1: Linux interface names have at most 15 bytes.
const maxIfName = 15

// convertInterface reads the route-based keywords: strongSwan's mark,
// mark_in, mark_out (and swanctl's if_id_in, if_id_out), Libreswan's
// mark, mark-in, mark-out, ipsec-interface, vti-interface and vti-shared.
// Every number given must be the same: ipsecgw has one device per ID, and
// marks matter only as that ID (no netfilter marks are set).
func (cb *connBuilder) convertInterface() {
	c := cb.c
	var ifc Interface
	type source struct {
		kv rawKV
		id uint32
	}
	var ids []source
	for _, k := range []string{"mark", "mark_in", "mark_out"} {
		kv, ok := cb.get(k)
		if !ok || kv.Value == "" {
			continue
		}
		m, err := parseMark(kv.Value)
		if err != nil {
			cb.errf(kv, "%v", err)
			continue
		}
		if k != "mark_out" {
			ifc.MarkIn = m
		}
		if k != "mark_in" {
			ifc.MarkOut = m
		}
		ids = append(ids, source{kv, m.Value})
	}
	for _, k := range []string{"if_id_in", "if_id_out"} {
		kv, ok := cb.get(k)
		if !ok || kv.Value == "" {
			continue
		}
		n, err := strconv.ParseUint(kv.Value, 0, 32)
		if err != nil || n == 0 {
			cb.errf(kv, "%q is not an interface ID (a number from 1 to 4294967295)", kv.Value)
			continue
		}
		if k == "if_id_in" {
			ifc.IfIDIn = uint32(n)
		} else {
			ifc.IfIDOut = uint32(n)
		}
		ids = append(ids, source{kv, uint32(n)})
	}
	if kv, ok := cb.get("ipsec-interface"); ok && kv.Value != "" {
		switch v := strings.ToLower(kv.Value); v {
		case "no":
		case "yes":
			ids = append(ids, source{kv, 1}) // Libreswan: yes is ipsec1
		default:
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil || n == 0 {
				cb.errf(kv, "%q is not an ipsec-interface (yes, no, or a number from 1)", kv.Value)
			} else {
				ids = append(ids, source{kv, uint32(n)})
			}
		}
	}
	if kv, ok := cb.get("vti-interface"); ok && kv.Value != "" {
		if len(kv.Value) > maxIfName || strings.ContainsAny(kv.Value, "/ \t:") {
			cb.errf(kv, "%q is not an interface name (at most %d characters, no '/', ':' or blanks)", kv.Value, maxIfName)
		} else {
			ifc.Name = kv.Value
		}
		if len(ids) == 0 {
			cb.errf(kv, "vti-interface= needs mark= (the VTI's key): ipsecgw uses it as the interface ID")
		}
	}
	for _, s := range ids[min(1, len(ids)):] {
		if s.id != ids[0].id {
			cb.errf(s.kv, "%s=%s names interface ID %d, but %s=%s names %d; a route-based conn has one device: give them the same number",
				s.kv.Key, s.kv.Value, s.id, ids[0].kv.Key, ids[0].kv.Value, ids[0].id)
		}
	}
	if len(ids) == 0 {
		return
	}
	ifc.ID = ids[0].id
	if ifc.Name == "" {
		ifc.Name = "ipsec" + strconv.FormatUint(uint64(ifc.ID), 10)
	}
	if c.Mode == ModeTransport {
		cb.errf(ids[0].kv, "a route-based conn (%s=) carries tunnel-mode SAs only", ids[0].kv.Key)
	}
	c.Interface = ifc
}

// parseMark parses <value>[/<mask>] (mask 0xffffffff when missing).
// strongSwan's %unique and %unique-dir give every SA a mark of its own,
// which selects no device.
func parseMark(s string) (Mark, error) {
	if strings.HasPrefix(s, "%unique") {
		return Mark{}, fmt.Errorf("mark %s gives each SA its own mark; ipsecgw uses a conn's mark as its interface ID, so give a number", s)
	}
	v, m, hasMask := strings.Cut(s, "/")
	val, err := strconv.ParseUint(v, 0, 32)
	if err != nil || val == 0 {
		return Mark{}, fmt.Errorf("%q is not a mark (<value>[/<mask>], value from 1 to 0xffffffff)", s)
	}
	mask := uint64(0xffffffff)
	if hasMask {
		if mask, err = strconv.ParseUint(m, 0, 32); err != nil || uint32(val)&^uint32(mask) != 0 {
			return Mark{}, fmt.Errorf("%q is not a mark: the mask must be a 32-bit number covering the value", s)
		}
	}
	return Mark{Value: uint32(val), Mask: uint32(mask)}, nil
}

// checkInterfaces rejects two loaded conns that give one interface ID two
// device names, or one device name two IDs: the device is shared by ID.
func (b *builder) checkInterfaces() {
	byID := map[uint32]Conn{}
	byName := map[string]Conn{}
	for _, c := range b.conns {
		ifc := c.Interface
		if ifc.ID == 0 || c.Auto == AutoIgnore {
			continue
		}
		if o, ok := byID[ifc.ID]; ok && o.Interface.Name != ifc.Name {
			b.add(SeverityError, rawKV{File: c.File, Line: c.Line, sect: c.Name}, c.Name,
				fmt.Sprintf("interface ID %d is device %s here but %s in conn %q; conns with one ID share one device", ifc.ID, ifc.Name, o.Interface.Name, o.Name))
		} else if o, ok := byName[ifc.Name]; ok && o.Interface.ID != ifc.ID {
			b.add(SeverityError, rawKV{File: c.File, Line: c.Line, sect: c.Name}, c.Name,
				fmt.Sprintf("device %s has interface ID %d here but %d in conn %q", ifc.Name, ifc.ID, o.Interface.ID, o.Name))
		}
		byID[ifc.ID], byName[ifc.Name] = c, c
	}
}
