package lab

import (
	"fmt"
	"strconv"
	"strings"
)

// IKESA is one entry of `swanctl --list-sas`.
type IKESA struct {
	Name         string // connection name
	UniqueID     string
	Version      int
	State        string // ESTABLISHED, CONNECTING, ...
	LocalHost    string
	LocalPort    int
	LocalID      string
	RemoteHost   string
	RemotePort   int
	RemoteID     string
	Initiator    bool
	InitiatorSPI string
	ResponderSPI string
	NATLocal     bool // this end is behind a NAT
	NATRemote    bool // the peer is behind a NAT
	NATFake      bool // NAT faked (strongSwan forcing encapsulation)
	NATAny       bool
	EncrAlg      string
	EncrKeysize  int
	IntegAlg     string
	PRFAlg       string
	DHGroup      string
	Children     []ChildSA
	// Raw holds every scalar field as printed, for fields not mapped above.
	Raw map[string]string
}

// ChildSA is a CHILD SA of an IKESA.
type ChildSA struct {
	Name        string
	UniqueID    string
	ReqID       string
	State       string // INSTALLED, ...
	Mode        string // TUNNEL, TRANSPORT
	Protocol    string // ESP, AH
	Encap       bool   // UDP encapsulation
	SPIIn       string
	SPIOut      string
	EncrAlg     string
	EncrKeysize int
	IntegAlg    string
	DHGroup     string
	BytesIn     uint64
	PacketsIn   uint64
	BytesOut    uint64
	PacketsOut  uint64
	LocalTS     []string
	RemoteTS    []string
	Raw         map[string]string
}

// Child returns the first CHILD SA with the given configuration name.
func (s IKESA) Child(name string) (ChildSA, bool) {
	for _, c := range s.Children {
		if c.Name == name {
			return c, true
		}
	}
	return ChildSA{}, false
}

// Proposal renders the IKE algorithms as swanctl prints them in its
// default output, e.g. AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048.
func (s IKESA) Proposal() string {
	return joinAlgs(algKey(s.EncrAlg, s.EncrKeysize), s.IntegAlg, s.PRFAlg, s.DHGroup)
}

// Proposal renders the CHILD SA algorithms, e.g. AES_GCM_16-128.
func (c ChildSA) Proposal() string {
	return joinAlgs(algKey(c.EncrAlg, c.EncrKeysize), c.IntegAlg, c.DHGroup)
}

func algKey(alg string, size int) string {
	if alg == "" || size == 0 {
		return alg
	}
	return fmt.Sprintf("%s-%d", alg, size)
}

func joinAlgs(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "/")
}

// section is a parsed block of swanctl's --pretty output.
type section struct {
	name   string
	kv     map[string]string
	lists  map[string][]string
	blocks []*section
}

func newSection(name string) *section {
	return &section{name: name, kv: map[string]string{}, lists: map[string][]string{}}
}

func (s *section) block(name string) *section {
	for _, b := range s.blocks {
		if b.name == name {
			return b
		}
	}
	return nil
}

// parsePretty parses the indented VICI dump of `swanctl --pretty`:
// "name {" opens a section, "}" closes it, "key = value" sets a value and
// "key = [" ... "]" is a list. Anything else is an error.
func parsePretty(text string) (*section, error) {
	root := newSection("")
	stack := []*section{root}
	var listKey string
	inList := false
	for i, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" {
			continue
		}
		cur := stack[len(stack)-1]
		switch {
		case inList:
			if line == "]" {
				inList = false
				continue
			}
			cur.lists[listKey] = append(cur.lists[listKey], line)
		case line == "}":
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: unbalanced }", i+1)
			}
			stack = stack[:len(stack)-1]
		case strings.HasSuffix(line, " = ["):
			listKey = strings.TrimSuffix(line, " = [")
			cur.lists[listKey] = []string{}
			inList = true
		case strings.HasSuffix(line, " {"):
			b := newSection(strings.TrimSuffix(line, " {"))
			cur.blocks = append(cur.blocks, b)
			stack = append(stack, b)
		default:
			k, v, ok := strings.Cut(line, " = ")
			if !ok {
				// An empty value prints as "key = " which TrimSpace
				// turns into "key =".
				if k2, found := strings.CutSuffix(line, " ="); found {
					k, v, ok = k2, "", true
				}
			}
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("line %d: unexpected %q", i+1, line)
			}
			cur.kv[k] = v
		}
	}
	if inList || len(stack) != 1 {
		return nil, fmt.Errorf("unterminated section or list")
	}
	return root, nil
}

// ParseListSAs parses the output of `swanctl --list-sas --pretty`: one
// "list-sa event" block per IKE SA, each holding a block named after the
// connection, followed by an (empty) "list-sas reply".
func ParseListSAs(text string) ([]IKESA, error) {
	root, err := parsePretty(text)
	if err != nil {
		return nil, fmt.Errorf("list-sas output: %w", err)
	}
	var out []IKESA
	for _, ev := range root.blocks {
		if ev.name != "list-sa event" {
			continue
		}
		for _, b := range ev.blocks {
			sa, err := ikeFromSection(b)
			if err != nil {
				return nil, fmt.Errorf("list-sas IKE SA %q: %w", b.name, err)
			}
			out = append(out, sa)
		}
	}
	return out, nil
}

// fieldReader converts fields and remembers the first malformed one.
type fieldReader struct {
	kv  map[string]string
	err error
}

func (r *fieldReader) int(key string) int {
	v, ok := r.kv[key]
	if !ok || v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("field %s: %w", key, err)
	}
	return n
}

func (r *fieldReader) uint(key string) uint64 {
	v, ok := r.kv[key]
	if !ok || v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil && r.err == nil {
		r.err = fmt.Errorf("field %s: %w", key, err)
	}
	return n
}

func (r *fieldReader) yes(key string) bool { return r.kv[key] == "yes" }

func ikeFromSection(s *section) (IKESA, error) {
	r := &fieldReader{kv: s.kv}
	sa := IKESA{
		Name:         s.name,
		UniqueID:     s.kv["uniqueid"],
		Version:      r.int("version"),
		State:        s.kv["state"],
		LocalHost:    s.kv["local-host"],
		LocalPort:    r.int("local-port"),
		LocalID:      s.kv["local-id"],
		RemoteHost:   s.kv["remote-host"],
		RemotePort:   r.int("remote-port"),
		RemoteID:     s.kv["remote-id"],
		Initiator:    r.yes("initiator"),
		InitiatorSPI: s.kv["initiator-spi"],
		ResponderSPI: s.kv["responder-spi"],
		NATLocal:     r.yes("nat-local"),
		NATRemote:    r.yes("nat-remote"),
		NATFake:      r.yes("nat-fake"),
		NATAny:       r.yes("nat-any"),
		EncrAlg:      s.kv["encr-alg"],
		EncrKeysize:  r.int("encr-keysize"),
		IntegAlg:     s.kv["integ-alg"],
		PRFAlg:       s.kv["prf-alg"],
		DHGroup:      s.kv["dh-group"],
		Raw:          s.kv,
	}
	if cs := s.block("child-sas"); cs != nil {
		for _, b := range cs.blocks {
			cr := &fieldReader{kv: b.kv}
			ch := ChildSA{
				Name:        def(b.kv["name"], b.name),
				UniqueID:    b.kv["uniqueid"],
				ReqID:       b.kv["reqid"],
				State:       b.kv["state"],
				Mode:        b.kv["mode"],
				Protocol:    b.kv["protocol"],
				Encap:       cr.yes("encap"),
				SPIIn:       b.kv["spi-in"],
				SPIOut:      b.kv["spi-out"],
				EncrAlg:     b.kv["encr-alg"],
				EncrKeysize: cr.int("encr-keysize"),
				IntegAlg:    b.kv["integ-alg"],
				DHGroup:     b.kv["dh-group"],
				BytesIn:     cr.uint("bytes-in"),
				PacketsIn:   cr.uint("packets-in"),
				BytesOut:    cr.uint("bytes-out"),
				PacketsOut:  cr.uint("packets-out"),
				LocalTS:     b.lists["local-ts"],
				RemoteTS:    b.lists["remote-ts"],
				Raw:         b.kv,
			}
			if cr.err != nil {
				return IKESA{}, fmt.Errorf("CHILD SA %q: %w", b.name, cr.err)
			}
			sa.Children = append(sa.Children, ch)
		}
	}
	if r.err != nil {
		return IKESA{}, r.err
	}
	return sa, nil
}
