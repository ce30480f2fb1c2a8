package interop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/internal/testpki"
)

// crlServer is an HTTP CRL distribution point inside a lab namespace: it
// serves DER CRLs by path and records every request, so that a test can
// tell who fetched which CRL.
type crlServer struct {
	crls map[string][]byte // by URL path

	mu  sync.Mutex
	log []crlFetch
}

type crlFetch struct {
	At     time.Time
	From   netip.Addr
	Path   string
	Agent  string
	Status int
}

func (f crlFetch) String() string {
	return fmt.Sprintf("%s GET %s from %s (%q) → %d", f.At.UTC().Format("15:04:05.000"), f.Path, f.From, f.Agent, f.Status)
}

func (s *crlServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := crlFetch{At: time.Now(), Path: r.URL.Path, Agent: r.UserAgent(), Status: http.StatusOK}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		f.From = ap.Addr()
	}
	crl, ok := s.crls[r.URL.Path]
	if !ok || r.Method != http.MethodGet {
		f.Status = http.StatusNotFound
	}
	s.mu.Lock()
	s.log = append(s.log, f)
	s.mu.Unlock()
	if f.Status != http.StatusOK {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Write(crl)
}

// fetches returns the requests for path from addr so far.
func (s *crlServer) fetches(path string, from netip.Addr) []crlFetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.DeleteFunc(slices.Clone(s.log), func(f crlFetch) bool { return f.Path != path || f.From != from })
}

// subscribeEvents streams the daemon's events (`ipsecgw events`) until
// the test ends. The daemon registers the subscriber before it answers the
// request, so every event after subscribeEvents returns is on the channel.
func subscribeEvents(ctx context.Context, t *testing.T, socket string) <-chan control.Event {
	t.Helper()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(`{"cmd":"events"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(c)
	var first control.Response
	if err := dec.Decode(&first); err != nil || !first.OK {
		t.Fatalf("events subscription: %v %+v", err, first)
	}
	out := make(chan control.Event, 64)
	go func() {
		defer close(out)
		for {
			var r control.Response
			if dec.Decode(&r) != nil {
				return
			}
			if r.Event != nil {
				out <- *r.Event
			}
		}
	}()
	return out
}

// waitEvent returns a channel that gets the first event of type typ for
// conn from events.
func waitEvent(events <-chan control.Event, typ, conn string) <-chan control.Event {
	found := make(chan control.Event, 1)
	go func() {
		for e := range events {
			if e.Type == typ && slices.Contains(e.Conns, conn) {
				found <- e
				return
			}
		}
	}()
	return found
}

// serveCRLs starts s on addr inside node's namespace until the test ends.
func serveCRLs(t *testing.T, node *lab.Node, addr netip.AddrPort, s *crlServer) {
	t.Helper()
	ln, err := node.ListenTCP(addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("CRL server: %v", err)
		}
	})
}

// TestCertCRLDistributionPointStrongSwan: no CRL file on either side;
// the certificates name an HTTP CRL distribution point served in GW2's
// namespace (198.51.100.2:8080, reachable from GW1 over the underlay),
// and both ipsecgw and strongSwan (curl plugin) fetch the CRL from it.
// Each conn has a CA of its own, so that a CRL one side fetched and
// cached for an earlier conn cannot stand in for the fetch of a later
// one. With nothing revoked the tunnel comes up; with ipsecgw's
// certificate revoked strongSwan refuses it; with strongSwan's revoked
// ipsecgw refuses it with cause cert-revoked.
func TestCertCRLDistributionPointStrongSwan(t *testing.T) {
	began := time.Now()
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cdp := netip.AddrPortFrom(l.GW2.Addr, 8080)
	srv := &crlServer{crls: map[string][]byte{}}
	conns := []struct {
		name                   string
		gw1Revoked, gw2Revoked bool
	}{{"crlok", false, false}, {"crlgw1revoked", true, false}, {"crlgw2revoked", false, true}}

	gwFiles := map[string][]byte{}
	swFiles := map[string][]byte{}
	var conf, secrets strings.Builder
	var swConns []lab.Conn
	for _, c := range conns {
		ca, err := testpki.NewCA("ipsecgw lab "+c.name, testpki.P256)
		if err != nil {
			t.Fatal(err)
		}
		path := "/" + c.name + ".crl"
		url := "http://" + cdp.String() + path
		issue := func(side string, revoked bool) *testpki.Leaf {
			leaf, err := ca.Issue(testpki.LeafOptions{CN: c.name + "." + side, Key: testpki.P256, DNS: []string{c.name + "." + side + ".lab"}, CRLURL: url})
			if err != nil {
				t.Fatal(err)
			}
			if revoked {
				ca.Revoke(leaf.Cert)
			}
			return leaf
		}
		g1, g2 := issue("gw1", c.gw1Revoked), issue("gw2", c.gw2Revoked)
		if srv.crls[path], err = ca.CRL(); err != nil {
			t.Fatal(err)
		}
		k1, err := testpki.KeyPEM(g1.Key)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := testpki.KeyPEM(g2.Key)
		if err != nil {
			t.Fatal(err)
		}
		gwFiles["ipsec.d/cacerts/"+c.name+".pem"] = testpki.CertPEM(ca.Cert)
		gwFiles["ipsec.d/certs/"+c.name+".pem"] = testpki.CertPEM(g1.Cert)
		gwFiles["ipsec.d/private/"+c.name+".key"] = k1
		swFiles["x509ca/"+c.name+".pem"] = testpki.CertPEM(ca.Cert)
		swFiles["x509/"+c.name+".pem"] = testpki.CertPEM(g2.Cert)
		swFiles["private/"+c.name+".key"] = k2
		fmt.Fprintf(&secrets, ": ECDSA %s.key\n", c.name)
		fmt.Fprintf(&conf, "conn %s\n  keyexchange=ikev2\n  authby=pubkey\n  left=%s\n  leftid=@%s.gw1.lab\n  leftcert=%s.pem\n  leftsubnet=%s\n"+
			"  right=%s\n  rightid=@%s.gw2.lab\n  rightsubnet=%s\n  auto=add\n\n",
			c.name, l.GW1.Addr, c.name, c.name, l.GW1.LAN, l.GW2.PublicAddr, c.name, l.GW2.LAN)
		sc := lab.SiteToSite(l.GW2, l.GW1, 2, "", "", "")
		sc.Name, sc.Auth, sc.LocalCert = c.name, "pubkey", c.name+".pem"
		sc.LocalID, sc.RemoteID = "@"+c.name+".gw2.lab", "@"+c.name+".gw1.lab"
		swConns = append(swConns, sc)
	}
	serveCRLs(t, l.GW2, cdp, srv)
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{
		Swanctl: lab.SwanctlConf(swConns...), Files: swFiles,
		// curl: the revocation plugin fetches http:// distribution points
		// through it.
		Plugins: append(certPlugins(), "curl"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log:\n%s", strings.Join(charon.LogLines(), "\n"))
		}
	})
	gw := startCertGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf.String(), Secrets: secrets.String()}, gwFiles)
	ipsecgwAt, strongswanAt := l.GW1.Addr, l.GW2.Addr

	// charonLine returns the first line of charon's log from line from on
	// that contains text.
	charonLine := func(from int, text string) string {
		for _, line := range charon.LogLines()[from:] {
			if strings.Contains(line, text) {
				return strings.TrimSpace(line)
			}
		}
		return ""
	}
	fetched := func(conn string, from netip.Addr, who string) {
		t.Helper()
		fs := srv.fetches("/"+conn+".crl", from)
		if len(fs) == 0 {
			t.Errorf("%s: %s did not fetch /%s.crl from the distribution point", conn, who, conn)
			return
		}
		t.Logf("%s: %s fetched: %s", conn, who, fs[0])
	}

	// (1) Nothing revoked: each side fetches the CRL of the other's
	// certificate and lets it through.
	start := time.Now()
	mark := len(charon.LogLines())
	if out, err := gw.cli(ctx, "up", "crlok"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := charon.WaitEstablished(ctx, "crlok", "net"); err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 1)
	t.Logf("crlok: up and ping both ways in %v", time.Since(start).Round(time.Millisecond))
	fetched("crlok", ipsecgwAt, "ipsecgw")
	fetched("crlok", strongswanAt, "strongSwan")
	if line := charonLine(mark, "fetching crl from"); line != "" {
		t.Logf("crlok: strongSwan: %s", line)
	}
	if out, err := gw.cli(ctx, "down", "crlok"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	if err := charon.WaitDown(ctx, "crlok"); err != nil {
		t.Fatal(err)
	}

	// (2) ipsecgw's certificate revoked: ipsecgw initiates, strongSwan
	// fetches the CRL, finds the certificate in it and refuses.
	mark = len(charon.LogLines())
	gw.cli(ctx, "up", "crlgw1revoked") // fails: the failure is in the status
	st, err := gw.waitState(ctx, "crlgw1revoked", control.StatePhase1Failed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.LastError, "AUTHENTICATION_FAILED") {
		t.Errorf("crlgw1revoked: ipsecgw's reason %q lacks AUTHENTICATION_FAILED", st.LastError)
	}
	refusal := charonLine(mark, "certificate was revoked")
	if refusal == "" {
		t.Errorf("crlgw1revoked: charon's log lacks \"certificate was revoked\"")
	}
	fetched("crlgw1revoked", strongswanAt, "strongSwan")
	t.Logf("crlgw1revoked refused: strongSwan: %s | ipsecgw: %s", refusal, st.LastError)

	// (3) strongSwan's certificate revoked: strongSwan initiates, ipsecgw
	// fetches the CRL and refuses as responder with cause cert-revoked.
	refused := waitEvent(subscribeEvents(ctx, t, gw.Socket), "failure", "crlgw2revoked")
	if err := charon.Initiate(ctx, "crlgw2revoked", "net"); err == nil {
		t.Errorf("crlgw2revoked: strongSwan's initiation succeeded")
	}
	st, err = gw.waitState(ctx, "crlgw2revoked", control.StatePhase1Failed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(st.LastError, "was revoked on") {
		t.Errorf("crlgw2revoked: ipsecgw's reason %q lacks \"was revoked on\"", st.LastError)
	}
	select {
	case e := <-refused:
		if e.Cause != "cert-revoked" {
			t.Errorf("crlgw2revoked: ipsecgw's failure event has cause %q, want cert-revoked: %+v", e.Cause, e)
		}
		t.Logf("crlgw2revoked refused: ipsecgw event: failure cause=%s text=%q", e.Cause, e.Text)
	case <-time.After(10 * time.Second):
		t.Errorf("crlgw2revoked: no failure event from ipsecgw")
	}
	fetched("crlgw2revoked", ipsecgwAt, "ipsecgw")
	t.Logf("crlgw2revoked refused: ipsecgw: %s | strongSwan: %s", st.LastError, charonLine(0, "received AUTHENTICATION_FAILED"))

	srv.mu.Lock()
	var all []string
	for _, f := range srv.log {
		all = append(all, f.String())
	}
	srv.mu.Unlock()
	t.Logf("CRL server log:\n%s", strings.Join(all, "\n"))
	t.Logf("test ran in %v", time.Since(began).Round(time.Millisecond))
}
