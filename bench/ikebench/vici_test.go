package main

import (
	"encoding/binary"
	"testing"
)

// A child-updown event as charon sends it: a top-level "up", the IKE SA's
// section with nested CHILD SAs and a list.
func TestDecodeVICI(t *testing.T) {
	var b []byte
	kv := func(k, v string) {
		b = append(b, viciKeyValue, byte(len(k)))
		b = append(b, k...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	sec := func(n string) { b = append(b, viciSectionStart, byte(len(n))); b = append(b, n...) }
	kv("up", "yes")
	sec("c7")
	kv("state", "ESTABLISHED")
	sec("child-sas")
	sec("net-8")
	kv("state", "INSTALLED")
	b = append(b, viciListStart, 8)
	b = append(b, "local-ts"...)
	for _, v := range []string{"10.64.0.8/32", "10.64.0.9/32"} {
		b = append(b, viciListItem)
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	b = append(b, viciListEnd, viciSectionEnd, viciSectionEnd, viciSectionEnd)
	m, err := decodeVICI(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.get("up") != "yes" || m.get("c7.state") != "ESTABLISHED" || m.get("c7.child-sas.net-8.state") != "INSTALLED" {
		t.Fatalf("decoded %v", m)
	}
	if ts := m["c7.child-sas.net-8.local-ts"]; len(ts) != 2 || ts[1] != "10.64.0.9/32" {
		t.Fatalf("list: %v", ts)
	}
	if _, err := decodeVICI(b[:len(b)-5]); err == nil {
		t.Fatal("a truncated message decoded")
	}
	// What encodeVICI writes decodes to the same pairs.
	m, err = decodeVICI(encodeVICI(nil, [][2]string{{"ike", "c1"}, {"timeout", "-1"}}))
	if err != nil || m.get("ike") != "c1" || m.get("timeout") != "-1" {
		t.Fatalf("round trip: %v %v", m, err)
	}
}

// Every SA gets its own /32 inside initiatorNet, carrying into the next
// octets.
func TestInitiatorTS(t *testing.T) {
	for k, want := range map[int]string{0: "10.64.0.1/32", 254: "10.64.0.255/32", 255: "10.64.1.0/32", 9999: "10.64.39.16/32", 70000: "10.65.17.113/32"} {
		if got := initiatorTS(k); got != want {
			t.Errorf("initiatorTS(%d) = %s, want %s", k, got, want)
		}
	}
}
