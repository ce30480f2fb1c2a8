package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Options says what to load.
type Options struct {
	ConfPath string // ipsec.conf, or a swanctl.conf (recognised by its name or content)
	// SwanctlPath reads this swanctl.conf instead of ConfPath; its
	// secrets section is used along with SecretsPath.
	SwanctlPath string
	SecretsPath string // ipsec.secrets; empty = do not read secrets
	// LocalAddrs are the host's addresses, used to tell which end of a conn
	// is local. Nil means unknown: left is then taken as local, and no
	// "matches no local address" warning is given.
	LocalAddrs []netip.Addr

	fs fileSystem // nil = the real file system
}

// Config is the validated configuration handed to the daemon. It is
// immutable: every accessor returns copies, except SharedConns and
// SharedConn, whose callers promise not to write.
type Config struct {
	conns   []Conn
	byName  map[string]int
	secrets *Secrets
	trust   *TrustStore
	files   []string
}

// Conns returns copies of every loaded connection (auto=ignore ones
// included, as the daemon may add them on demand), in file order.
func (c *Config) Conns() []Conn {
	out := make([]Conn, len(c.conns))
	for i, x := range c.conns {
		out[i] = x.Clone()
	}
	return out
}

// Conn returns a copy of one connection.
func (c *Config) Conn(name string) (Conn, bool) {
	i, ok := c.byName[name]
	if !ok {
		return Conn{}, false
	}
	return c.conns[i].Clone(), true
}

// SharedConns returns the loaded connections themselves, in file order:
// not copies, so the caller must never write to them, nor to what their
// slices hold. It is for a reader that keeps every conn as long as the
// Config: the IKE Manager's SAs share these instead of a second copy of
// each conn (some 800 B per conn, with thousands of conns configured).
func (c *Config) SharedConns() []*Conn {
	out := make([]*Conn, len(c.conns))
	for i := range c.conns {
		out[i] = &c.conns[i]
	}
	return out
}

// SharedConn returns the loaded connection called name itself, under the
// terms of SharedConns.
func (c *Config) SharedConn(name string) (*Conn, bool) {
	i, ok := c.byName[name]
	if !ok {
		return nil, false
	}
	return &c.conns[i], true
}

// Names lists the connection names in file order.
func (c *Config) Names() []string {
	out := make([]string, len(c.conns))
	for i, x := range c.conns {
		out[i] = x.Name
	}
	return out
}

// Files lists the configuration files that were read.
func (c *Config) Files() []string { return slices.Clone(c.files) }

// Secrets returns the loaded secrets (never nil).
func (c *Config) Secrets() *Secrets { return c.secrets }

// Trust returns the CA certificates and CRLs of ipsec.d (never nil).
func (c *Config) Trust() *TrustStore {
	if c.trust == nil {
		return &TrustStore{}
	}
	return c.trust
}

// PSK looks up the pre-shared key of a connection by its pair of IDs.
func (c *Config) PSK(conn Conn) (PSK, bool) {
	return c.secrets.LookupPSK(effectiveID(conn.Local), effectiveID(conn.Remote))
}

// effectiveID is the ID used for secret lookup: the configured one, or the
// end's address when no ID was given.
func effectiveID(e End) Identity {
	if e.ID.Type == IDAny && e.Addr.IsValid() {
		return ipID(e.Addr)
	}
	return e.ID
}

// Load reads ipsec.conf (and ipsec.secrets), and returns the configuration
// with every diagnostic found. The error is non-nil, and the Config nil,
// when any diagnostic is an error; warnings alone never fail a load.
func Load(opts Options) (*Config, Diagnostics, error) {
	fsys := opts.fs
	if fsys == nil {
		fsys = osFS{}
	}
	p := &confParser{fs: fsys, libreswanFiles: map[string]bool{}}
	swanctl := opts.SwanctlPath
	if swanctl == "" && looksLikeSwanctl(fsys, opts.ConfPath) {
		swanctl = opts.ConfPath
	}
	var swSecrets []secretEntry
	if swanctl != "" {
		p.sections, swSecrets, p.diags = loadSwanctl(fsys, swanctl)
	} else {
		p.parseFile(opts.ConfPath, "", 0)
	}
	b := &builder{p: p, opts: opts}
	b.build()
	var secrets *Secrets
	if opts.SecretsPath != "" {
		var sd Diagnostics
		secrets, sd = loadSecrets(fsys, opts.SecretsPath)
		b.diags = append(b.diags, sd...)
	} else {
		secrets = &Secrets{}
	}
	// swanctl.conf's own secrets come first: its connections were written
	// with them.
	secrets.entries = append(swSecrets, secrets.entries...)
	b.checkSecrets(secrets)
	for _, c := range b.conns {
		if b.loaded[c.Name] {
			b.checkPubkey(c, secrets)
		}
	}
	trust, td := loadTrust(fsys, IPsecDir(opts.ConfPath))
	b.diags = append(b.diags, td...)
	diags := dedupe(append(p.diags, b.diags...))
	diags.Sort()
	if err := diags.Err(); err != nil {
		return nil, diags, err
	}
	cfg := &Config{conns: b.conns, byName: map[string]int{}, secrets: secrets, trust: trust, files: b.files()}
	for i, c := range cfg.conns {
		cfg.byName[c.Name] = i
	}
	return cfg, diags, nil
}

func dedupe(ds Diagnostics) Diagnostics {
	type key struct {
		file, msg string
		line      int
	}
	seen := map[key]bool{}
	out := ds[:0:0]
	for _, d := range ds {
		k := key{d.File, d.Keyword + "\x00" + d.Msg, d.Line}
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

type builder struct {
	p     *confParser
	opts  Options
	diags Diagnostics
	conns []Conn
	// sections of kind conn, merged by name, in order of first appearance.
	connOrder []string
	connSecs  map[string][]*rawSection
	// lines of each conn's authby (for PSK diagnostics).
	authLine map[string]rawKV
	loaded   map[string]bool // conns with auto != ignore
	loops    map[string]bool // also= loops already reported
	// subnetLines locates each conn's remote subnets, for the overlap check.
	subnetLines map[string]rawKV
}

func (b *builder) files() []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range b.p.sections {
		if s != nil && !seen[s.File] {
			seen[s.File] = true
			out = append(out, s.File)
		}
	}
	return out
}

func (b *builder) add(sev Severity, kv rawKV, conn, msg string) {
	b.diags = append(b.diags, Diagnostic{File: kv.File, Line: kv.Line, Severity: sev, Conn: conn, Keyword: kv.keyword(), Msg: msg})
}

func (b *builder) build() {
	b.connSecs = map[string][]*rawSection{}
	b.authLine = map[string]rawKV{}
	b.loaded = map[string]bool{}
	b.loops = map[string]bool{}
	b.subnetLines = map[string]rawKV{}
	for _, s := range b.p.sections {
		if s == nil {
			continue
		}
		switch s.Kind {
		case "config":
			b.checkSetup(s)
		case "ca":
			b.checkCA(s)
		case "conn":
			if _, ok := b.connSecs[s.Name]; !ok {
				b.connOrder = append(b.connOrder, s.Name)
			}
			b.connSecs[s.Name] = append(b.connSecs[s.Name], s)
			b.checkConnKeywords(s)
		}
	}
	n := 0
	for _, name := range b.connOrder {
		if name == "%default" {
			continue
		}
		n++
		if n > MaxConns {
			s := b.connSecs[name][0]
			b.diags = append(b.diags, Diagnostic{File: s.File, Line: s.Line, Severity: SeverityError, Conn: name, Msg: fmt.Sprintf("more than %d connections", MaxConns)})
			break
		}
		if c, ok := b.buildConn(name); ok {
			b.conns = append(b.conns, c)
		}
	}
	b.checkInterfaces()
	b.checkTCPMSS()
	b.checkConnOverlap()
}

func (b *builder) checkSetup(s *rawSection) {
	for _, kv := range s.KVs {
		if !setupKeywords[kv.Key] {
			msg := "unknown config setup keyword, ignored"
			if sg := suggest(kv.Key, allSetupKeywords()); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			}
			b.add(SeverityWarning, kv, "", msg)
		}
	}
}

func (b *builder) checkCA(s *rawSection) {
	b.diags = append(b.diags, Diagnostic{File: s.File, Line: s.Line, Severity: SeverityWarning, Conn: "ca " + s.Name,
		Msg: "ca sections are accepted but not used yet (ipsecgw authenticates with pre-shared keys)"})
	for _, kv := range s.KVs {
		if !caKeywords[kv.Key] {
			b.add(SeverityError, kv, "ca "+s.Name, "unknown keyword in a ca section")
		}
	}
}

// checkConnKeywords reports unknown, ignored and duplicate keywords once
// per line, whichever conns inherit the line.
func (b *builder) checkConnKeywords(s *rawSection) {
	seen := map[string]rawKV{}
	for _, kv := range s.KVs {
		kw, _, _, ok := lookupConnKeyword(kv.Key)
		if !ok {
			msg := "unknown keyword"
			if sg := suggest(kv.Key, allConnKeywords()); sg != "" {
				msg += fmt.Sprintf("; did you mean %q?", sg)
			} else {
				msg += "; see ipsec.conf(5) for the conn keywords"
			}
			b.add(SeverityError, kv, s.Name, msg)
			continue
		}
		if kw.action == kwIgnored && kv.Value != "" {
			b.add(SeverityWarning, kv, s.Name, "accepted but not supported yet by ipsecgw; it has no effect")
		}
		if kw.canonical != "also" {
			if prev, dup := seen[kw.canonical]; dup {
				b.add(SeverityWarning, kv, s.Name, fmt.Sprintf("also set at line %d of this section (as %s); this later value wins", prev.Line, prev.Key))
			}
			seen[kw.canonical] = kv
		}
	}
}

// effective computes the inherited key/value set of a conn: %default first,
// then also= sections in order, then the conn's own lines, later ones
// overriding earlier ones; an empty value resets to the default.
func (b *builder) effective(name string) (map[string]rawKV, []string, bool) {
	var list []rawKV
	var sources []string
	visited := map[string]bool{}
	ok := true
	var collect func(sec string, stack []string, from rawKV) bool
	collect = func(sec string, stack []string, from rawKV) bool {
		// Problems with an also= line belong to the section that has it.
		owner := name
		if len(stack) > 0 {
			owner = stack[len(stack)-1]
		}
		secs, found := b.connSecs[sec]
		if !found {
			if sec == "%default" {
				return true
			}
			msg := fmt.Sprintf("no conn section named %q", sec)
			if sg := suggest(sec, b.connOrder); sg != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sg)
			}
			b.add(SeverityError, from, owner, msg)
			return false
		}
		if i := slices.Index(stack, sec); i >= 0 {
			// Report each loop once, whichever of its conns is built first.
			cycle := slices.Clone(stack[i:])
			slices.Sort(cycle)
			if key := strings.Join(cycle, "\x00"); !b.loops[key] {
				b.loops[key] = true
				b.add(SeverityError, from, owner, fmt.Sprintf("also= loop: %s; remove one of these also= lines", strings.Join(append(stack[i:], sec), " -> ")))
			}
			return false
		}
		if len(stack) > MaxAlsoDepth {
			b.add(SeverityError, from, owner, fmt.Sprintf("also= nested deeper than %d levels", MaxAlsoDepth))
			return false
		}
		// Each section is applied once per conn, at its first reference:
		// without this, "also=x x x" chains grow exponentially.
		if visited[sec] {
			return true
		}
		visited[sec] = true
		stack = append(stack, sec)
		sources = append(sources, sec)
		good := true
		for _, s := range secs {
			for _, kv := range s.KVs {
				if kv.Key == "also" {
					for _, target := range strings.Fields(kv.Value) {
						if !collect(target, stack, kv) {
							good = false
						}
					}
				}
			}
		}
		for _, s := range secs {
			for _, kv := range s.KVs {
				if kv.Key != "also" {
					kv.sect = sec
					list = append(list, kv)
				}
			}
		}
		return good
	}
	if name != "%default" {
		ok = collect("%default", nil, rawKV{}) && ok
	}
	ok = collect(name, nil, rawKV{}) && ok
	eff := map[string]rawKV{}
	for _, kv := range list {
		kw, _, _, known := lookupConnKeyword(kv.Key)
		if !known {
			continue
		}
		if kv.Value == "" {
			delete(eff, kw.canonical)
			continue
		}
		eff[kw.canonical] = kv
	}
	return eff, sources, ok
}

// buildConn turns the effective key/values of a conn into a typed Conn.
func (b *builder) buildConn(name string) (Conn, bool) {
	first := b.connSecs[name][0]
	eff, _, ok := b.effective(name)
	if !ok {
		return Conn{}, false
	}
	dialect := DialectStrongSwan
	if b.p.libreswanFiles[first.File] {
		dialect = DialectLibreswan
	}
	for k, kv := range eff {
		if kw, _, _, _ := lookupConnKeyword(k); kw.libreswan || b.p.libreswanFiles[kv.File] {
			dialect = DialectLibreswan
		}
		if (k == "ike" || k == "esp" || k == "phase2alg") && IsLibreswanProposal(kv.Value) {
			dialect = DialectLibreswan
		}
	}
	c := defaultConn(name, dialect)
	c.File, c.Line = first.File, first.Line
	cb := &connBuilder{b: b, c: &c, eff: eff}
	cb.convert()
	if cb.failed {
		return Conn{}, false
	}
	if c.Auto != AutoIgnore {
		b.loaded[name] = true
		cb.validate()
		side := map[bool]string{true: "right", false: "left"}[c.LocalIsLeft]
		for _, k := range []string{side + "subnet", side + "subnets"} {
			if kv, ok := cb.get(k); ok {
				b.subnetLines[name] = kv
			}
		}
	}
	if cb.failed {
		return Conn{}, false
	}
	return c, true
}

type connBuilder struct {
	b      *builder
	c      *Conn
	eff    map[string]rawKV
	failed bool
}

func (cb *connBuilder) errf(kv rawKV, format string, args ...any) {
	cb.failed = true
	cb.b.add(SeverityError, kv, cb.connName(kv), fmt.Sprintf(format, args...))
}

func (cb *connBuilder) warnf(kv rawKV, format string, args ...any) {
	cb.b.add(SeverityWarning, kv, cb.connName(kv), fmt.Sprintf(format, args...))
}

// connName names the section a line was written in, so that a problem in
// %default or an also= template is reported against it.
func (cb *connBuilder) connName(kv rawKV) string {
	if kv.sect != "" {
		return kv.sect
	}
	return cb.c.Name
}

// headerKV locates a diagnostic on the conn header line.
func (cb *connBuilder) headerKV() rawKV {
	return rawKV{File: cb.c.File, Line: cb.c.Line, sect: cb.c.Name}
}

func (cb *connBuilder) get(key string) (rawKV, bool) {
	kv, ok := cb.eff[key]
	return kv, ok
}

func (cb *connBuilder) enum(key string, table map[string]int, dst *int) {
	kv, ok := cb.get(key)
	if !ok {
		return
	}
	v, found := table[strings.ToLower(kv.Value)]
	if !found {
		var names []string
		for n := range table {
			names = append(names, n)
		}
		slices.Sort(names)
		cb.errf(kv, "invalid value %q; expected one of %s", kv.Value, strings.Join(names, ", "))
		return
	}
	*dst = v
}

func (cb *connBuilder) boolean(key string, dst *bool) {
	if kv, ok := cb.get(key); ok {
		v, err := parseBool(kv.Value)
		if err != nil {
			cb.errf(kv, "%v", err)
			return
		}
		*dst = v
	}
}

func (cb *connBuilder) duration(key string, dst *time.Duration) {
	if kv, ok := cb.get(key); ok {
		d, err := ParseDuration(kv.Value)
		if err != nil {
			cb.errf(kv, "%v", err)
			return
		}
		*dst = d
	}
}

func (cb *connBuilder) size(key string, dst *uint64) {
	if kv, ok := cb.get(key); ok {
		n, err := parseSize(kv.Value)
		if err != nil {
			cb.errf(kv, "%v", err)
			return
		}
		*dst = n
	}
}
