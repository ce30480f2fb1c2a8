package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// requireNetns skips a test that creates a network namespace unless it
// runs as root without -short; with IPSECGW_REQUIRE_INTEROP=1 (CI) missing
// root is a failure instead.
func requireNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("creates a network namespace")
	}
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root to create a network namespace (run as root, or in CI with IPSECGW_REQUIRE_INTEROP=1)"
	if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var nsSeq atomic.Int32

// newNS creates a namespace named ipgwt-<pid>-g<n> with lo up, deleted
// when the test ends.
func newNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("ipgwt-%d-g%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipNS(t, name, "link", "set", "lo", "up")
	return name
}

func ipNS(t *testing.T, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// kernelRoute is the part of `ip -j route show` these tests compare.
type kernelRoute struct {
	Type     string `json:"type"`
	Dst      string `json:"dst"`
	Dev      string `json:"dev"`
	Gateway  string `json:"gateway"`
	Protocol string `json:"protocol"`
	Metric   int64  `json:"metric"`
}

func (r kernelRoute) String() string {
	s := r.Dst
	if r.Type != "" && r.Type != "unicast" {
		s = r.Type + " " + s
	}
	if r.Gateway != "" {
		s += " via " + r.Gateway
	}
	// IPv6 blackholes are attached to lo; that says nothing here.
	if r.Dev != "" && r.Type != "blackhole" {
		s += " dev " + r.Dev
	}
	if r.Protocol != "" && r.Protocol != "boot" && r.Protocol != "kernel" {
		s += " proto " + r.Protocol
	}
	return s + fmt.Sprintf(" metric %d", r.Metric)
}

// mainRoutes lists the main table of both families, one string per route,
// without the kernel's own (link and local) routes. ip -j leaves out a
// zero metric, which then reads as 0 all the same.
func mainRoutes(t *testing.T, ns string) []string {
	t.Helper()
	var out []string
	for _, fam := range []string{"-4", "-6"} {
		var rs []kernelRoute
		if err := json.Unmarshal([]byte(ipNS(t, ns, "-j", fam, "route", "show", "table", "main")), &rs); err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Protocol == "kernel" {
				continue
			}
			out = append(out, r.String())
		}
	}
	slices.Sort(out)
	return out
}

// routeGet asks the kernel where a packet to addr would go: the route's
// description, or "blackhole" when the route that wins is one (the kernel
// answers EINVAL for both families then).
func routeGet(t *testing.T, ns, addr string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "route", "get", addr).CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil {
		if strings.Contains(s, "Invalid argument") {
			return "blackhole"
		}
		return "error: " + s
	}
	return strings.Fields(s)[0] + " " + strings.Join(fieldsAfter(s, "dev", "via"), " ")
}

// fieldsAfter returns "via X" and "dev Y" of an `ip route get` answer.
func fieldsAfter(s string, keys ...string) []string {
	f := strings.Fields(s)
	var out []string
	for i := 0; i+1 < len(f); i++ {
		if slices.Contains(keys, f[i]) {
			out = append(out, f[i], f[i+1])
		}
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestSyncInNamespace drives Sync through a daemon's life in a throw-away
// namespace with an underlay default route (both families) and a stand-in
// TUN device: it adds guards for the conns' remote subnets, adopts and
// repairs leftovers of ours (found by protocol), removes leftovers no conn
// needs, never touches other routes, respects the exceptions, lets the TUN
// route win while it exists and the guard win over the default route when
// it does not, keeps everything on a second Sync, follows a reload, and
// Flush removes exactly ours.
func TestSyncInNamespace(t *testing.T) {
	requireNetns(t)
	ns := newNS(t)
	for _, args := range [][]string{
		// No dummy driver on every kernel; a veth pair with both ends
		// here stands in for the underlay and for the TUN.
		{"link", "add", "ul0", "type", "veth", "peer", "name", "ul0p"},
		{"link", "set", "ul0p", "up"},
		{"addr", "add", "198.51.100.1/24", "dev", "ul0"},
		{"addr", "add", "fd00:51::1/64", "dev", "ul0", "nodad"},
		{"link", "set", "ul0", "up"},
		{"route", "add", "default", "via", "198.51.100.254"},
		{"-6", "route", "add", "default", "via", "fd00:51::fe"},
		// The stand-in for ipsecgw's TUN with its routes, as
		// tun.TUN.AddRoute puts them (IPv6 gets the kernel's metric).
		{"link", "add", "tun0", "type", "veth", "peer", "name", "tun0p"},
		{"link", "set", "tun0p", "up"},
		{"link", "set", "tun0", "up"},
		{"route", "add", "10.3.0.0/16", "dev", "tun0", "scope", "link"},
		{"-6", "route", "add", "fd00:2::/64", "dev", "tun0"},
		// Leftovers of an earlier daemon: one a conn still needs, one in
		// an old shape for a subnet a conn needs, two no conn needs.
		{"route", "add", "blackhole", "10.4.0.0/24", "proto", "50", "metric", "2147483647"},
		{"route", "add", "blackhole", "10.2.0.0/24", "proto", "50", "metric", "100"},
		{"route", "add", "blackhole", "10.9.0.0/24", "proto", "50", "metric", "2147483647"},
		{"-6", "route", "add", "unreachable", "fd00:9::/64", "proto", "50"},
		// Routes of others: never touched, whatever they look like.
		{"route", "add", "10.2.0.0/24", "via", "198.51.100.254", "proto", "static", "metric", "200"},
		{"route", "add", "blackhole", "10.8.0.0/24", "proto", "static"},
		{"route", "add", "blackhole", "10.6.0.0/24", "proto", "static", "metric", "2147483647"},
	} {
		ipNS(t, ns, args...)
	}
	foreign := []string{
		"10.2.0.0/24 via 198.51.100.254 dev ul0 proto static metric 200",
		"blackhole 10.8.0.0/24 proto static metric 0",
		"blackhole 10.6.0.0/24 proto static metric 2147483647",
		"10.3.0.0/16 dev tun0 metric 0",
		"fd00:2::/64 dev tun0 metric 1024",
		"default via 198.51.100.254 dev ul0 metric 0",
		"default via fd00:51::fe dev ul0 metric 1024",
	}
	if got := routeGet(t, ns, "fd00:4::5"); got != "fd00:4::5 via fd00:51::fe dev ul0" {
		t.Fatalf("before Sync, fd00:4::5 goes %q, want the default route", got)
	}

	var logBuf bytes.Buffer
	g := New(Options{NetNS: "/run/netns/" + ns, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	defer g.Close()
	cfg := loadConf(t, conn("s2s", "198.51.100.2", "10.2.0.0/24,fd00:2::/64", "start")+
		conn("trap", "198.51.100.3", "10.3.0.0/16", "route")+
		conn("rw", "%any", "10.4.0.0/24,fd00:4::/64", "add")+
		// Another route holds exactly our prefix and metric.
		conn("clash", "198.51.100.4", "10.6.0.0/24", "start")+
		conn("h2h", "198.51.100.9", "", "start")+
		conn("full", "198.51.100.2", "0.0.0.0/0,::/0", "add")+
		conn("off", "198.51.100.5", "10.7.0.0/24", "ignore"))
	res, err := g.Sync(cfg)
	if err == nil || !strings.Contains(err.Error(), "10.6.0.0/24") || !strings.Contains(err.Error(), "did not install") {
		t.Errorf("Sync error %v, want one about the route for 10.6.0.0/24 ipsecgw did not install", err)
	}
	if got, want := prefixStrings(res.Added), sorted("10.2.0.0/24", "10.3.0.0/16", "fd00:2::/64", "fd00:4::/64"); !slices.Equal(got, want) {
		t.Errorf("added %v, want %v", got, want)
	}
	if got, want := prefixStrings(res.Kept), []string{"10.4.0.0/24"}; !slices.Equal(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
	if got, want := prefixStrings(res.Removed), sorted("10.2.0.0/24", "10.9.0.0/24", "fd00:9::/64"); !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v (the old-shape 10.2.0.0/24 and the two nobody needs)", got, want)
	}
	if len(res.Plan.Exceptions) != 3 {
		t.Errorf("exceptions %v, want h2h's /32 and full's two /0", res.Plan.Exceptions)
	}
	guards := []string{
		"blackhole 10.2.0.0/24 proto 50 metric 2147483647",
		"blackhole 10.3.0.0/16 proto 50 metric 2147483647",
		"blackhole 10.4.0.0/24 proto 50 metric 2147483647",
		"blackhole fd00:2::/64 proto 50 metric 2147483647",
		"blackhole fd00:4::/64 proto 50 metric 2147483647",
	}
	want := sorted(append(slices.Clone(foreign), guards...)...)
	if got := mainRoutes(t, ns); !slices.Equal(got, want) {
		t.Fatalf("main table after Sync:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Which route wins. The TUN's while it is there; the guard over the
	// default route when it is not; any other route for the same prefix
	// over the guard; untouched subnets still go by the default route.
	for _, c := range []struct{ addr, want string }{
		{"10.3.1.1", "10.3.1.1 dev tun0"},
		{"fd00:2::5", "fd00:2::5 dev tun0"},
		{"fd00:4::5", "blackhole"},
		{"10.4.0.5", "blackhole"},
		{"10.2.0.5", "10.2.0.5 via 198.51.100.254 dev ul0"},
		{"10.7.0.5", "10.7.0.5 via 198.51.100.254 dev ul0"},
		{"198.51.100.9", "198.51.100.9 dev ul0"},
		{"203.0.113.1", "203.0.113.1 via 198.51.100.254 dev ul0"},
	} {
		if got := routeGet(t, ns, c.addr); got != c.want {
			t.Errorf("route to %s: %q, want %q", c.addr, got, c.want)
		}
	}
	// The TUN goes (daemon killed): its routes with it.
	ipNS(t, ns, "link", "del", "tun0")
	for _, addr := range []string{"10.3.1.1", "fd00:2::5"} {
		if got := routeGet(t, ns, addr); got != "blackhole" {
			t.Errorf("route to %s without the TUN: %q, want the guard", addr, got)
		}
	}

	// A restarted daemon (a new Guard) adopts everything.
	g2 := New(Options{NetNS: "/run/netns/" + ns})
	defer g2.Close()
	res, _ = g2.Sync(cfg)
	if len(res.Added) != 0 || len(res.Removed) != 0 || len(res.Kept) != len(guards) {
		t.Errorf("second Sync: added %v, removed %v, kept %v; want all %d kept", res.Added, res.Removed, res.Kept, len(guards))
	}
	// Each exception is logged once per Guard, however often it syncs.
	if _, err := g.Sync(cfg); err == nil {
		t.Error("third Sync: no error about the route for 10.6.0.0/24 that ipsecgw did not install")
	}
	if n := strings.Count(logBuf.String(), "remote subnet not guarded"); n != 3 {
		t.Errorf("%d exception lines after two Syncs, want 3:\n%s", n, logBuf.String())
	}

	// Reload: s2s set to auto=ignore, trap removed, clash resolved by
	// removing its conn.
	cfg2 := loadConf(t, conn("s2s", "198.51.100.2", "10.2.0.0/24,fd00:2::/64", "ignore")+
		conn("rw", "%any", "10.4.0.0/24,fd00:4::/64", "add"))
	res, err = g.Sync(cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prefixStrings(res.Removed), sorted("10.2.0.0/24", "10.3.0.0/16", "fd00:2::/64"); !slices.Equal(got, want) || len(res.Added) != 0 {
		t.Errorf("reload: removed %v (want %v), added %v", got, want, res.Added)
	}
	foreign = slices.DeleteFunc(foreign, func(s string) bool { return strings.Contains(s, "tun0") })
	want = sorted(append(slices.Clone(foreign),
		"blackhole 10.4.0.0/24 proto 50 metric 2147483647", "blackhole fd00:4::/64 proto 50 metric 2147483647")...)
	if got := mainRoutes(t, ns); !slices.Equal(got, want) {
		t.Fatalf("main table after the reload:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// Flush: the deliberate opening removes ours, nothing else.
	removed, err := g.Flush()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := prefixStrings(removed), sorted("10.4.0.0/24", "fd00:4::/64"); !slices.Equal(got, want) {
		t.Errorf("flush removed %v, want %v", got, want)
	}
	if got := mainRoutes(t, ns); !slices.Equal(got, sorted(foreign...)) {
		t.Errorf("main table after Flush:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(sorted(foreign...), "\n  "))
	}
	if rs, err := g.Routes(); err != nil || len(rs) != 0 {
		t.Errorf("Routes after Flush: %v, %v", rs, err)
	}
	if got := routeGet(t, ns, "10.4.0.5"); got != "10.4.0.5 via 198.51.100.254 dev ul0" {
		t.Errorf("after Flush, 10.4.0.5 goes %q, want the default route", got)
	}
}
