package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Net is a small network the test builds for itself: each host is a network
// namespace of its own, linked by a veth pair to a router namespace that
// forwards between them; the test's own namespace is linked to the router
// too, so it reaches every host at its address. Addresses are in one
// 10.213.S.0/24 that nothing else on the machine uses, /30 per link; the
// only change outside the namespaces is the test's end of its link and its
// route to the /24, both gone with the link. Faults are made in the router:
// a link taken down, a blackhole rule between two hosts, random loss.
type Net struct {
	t      testing.TB
	id     string // names every namespace and link of this net
	subnet int    // S of 10.213.S.0/24
	router string // the router namespace

	mu    sync.Mutex
	hosts []*Host
	rules int // blackhole rules added, for their priorities
}

// Host is one namespace of a Net.
type Host struct {
	Name string
	NS   string // namespace name, for ip netns exec
	Addr string // its address
	link string // the router's end of its link
	net  *Net
}

// RequireNet skips a test that needs network namespaces where it cannot
// have them (not root, no ip), except in CI, where it fails.
func RequireNet(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("network fault tests need root (network namespaces) in CI")
		}
		t.Skip("network fault tests need root to make network namespaces: run as root")
	}
	RequireTool(t, "ip")
}

// NewNet builds the router and the link to the test's namespace; add hosts
// with Host. Everything is removed when the test ends.
func NewNet(t testing.TB) *Net {
	t.Helper()
	RequireNet(t)
	var b [3]byte
	_, _ = rand.Read(b[:])
	n := &Net{t: t, id: "vs" + hex.EncodeToString(b[:])}
	n.subnet = n.freeSubnet()
	n.router = n.id + "-router"
	n.ip("netns", "add", n.router)
	t.Cleanup(func() { n.remove() })
	n.in(n.router, "ip", "link", "set", "lo", "up")
	n.in(n.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// The test's end: <id>t in our namespace, <id>T in the router.
	mine, theirs := n.id+"t", n.id+"T"
	n.ip("link", "add", mine, "type", "veth", "peer", "name", theirs, "netns", n.router)
	n.ip("addr", "add", n.addr(1)+"/30", "dev", mine)
	n.ip("link", "set", mine, "up")
	n.in(n.router, "ip", "addr", "add", n.addr(2)+"/30", "dev", theirs)
	n.in(n.router, "ip", "link", "set", theirs, "up")
	n.ip("route", "add", fmt.Sprintf("10.213.%d.0/24", n.subnet), "via", n.addr(2), "dev", mine)
	return n
}

// freeSubnet picks an S whose 10.213.S.0/24 no address or route here uses.
func (n *Net) freeSubnet() int {
	for range 50 {
		s, _ := rand.Int(rand.Reader, big.NewInt(256))
		prefix := fmt.Sprintf("10.213.%d.", s.Int64())
		addrs, _ := exec.Command("ip", "-4", "addr").Output()
		routes, _ := exec.Command("ip", "-4", "route").Output()
		if !strings.Contains(string(addrs)+string(routes), prefix) {
			return int(s.Int64())
		}
	}
	n.t.Fatal("no free 10.213.S.0/24 subnet for the test network")
	return 0
}

func (n *Net) addr(host int) string { return fmt.Sprintf("10.213.%d.%d", n.subnet, host) }

// Host adds a host linked to the router: link i is 10.213.S.4i/30, the
// router at .4i+1, the host at .4i+2.
func (n *Net) Host(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	i := len(n.hosts) + 1
	n.mu.Unlock()
	if i > 63 {
		n.t.Fatal("too many hosts on one test network")
	}
	h := &Host{Name: name, NS: fmt.Sprintf("%s-%d", n.id, i), Addr: n.addr(4*i + 2), link: fmt.Sprintf("%sr%d", n.id, i), net: n}
	n.ip("netns", "add", h.NS)
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	n.in(h.NS, "ip", "link", "set", "lo", "up")
	n.in(n.router, "ip", "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.NS)
	n.in(n.router, "ip", "addr", "add", n.addr(4*i+1)+"/30", "dev", h.link)
	n.in(n.router, "ip", "link", "set", h.link, "up")
	n.in(h.NS, "ip", "addr", "add", h.Addr+"/30", "dev", "eth0")
	n.in(h.NS, "ip", "link", "set", "eth0", "up")
	n.in(h.NS, "ip", "route", "add", "default", "via", n.addr(4*i+1))
	return h
}

// LinkDown takes the host's link down at the router: nothing reaches it or
// leaves it, the test included. LinkUp brings it back.
func (h *Host) LinkDown() { h.net.in(h.net.router, "ip", "link", "set", h.link, "down") }

// LinkUp restores the host's link.
func (h *Host) LinkUp() { h.net.in(h.net.router, "ip", "link", "set", h.link, "up") }

// Cut drops, silently, every packet between hosts a and b at the router,
// both ways; both stay reachable from everywhere else. The returned func
// heals the cut.
func (n *Net) Cut(a, b *Host) (heal func()) {
	n.mu.Lock()
	n.rules++
	prio := 1000 + 2*n.rules
	n.mu.Unlock()
	rule := func(op string, prio int, from, to string) {
		n.in(n.router, "ip", "rule", op, "priority", fmt.Sprint(prio), "from", from, "to", to, "blackhole")
	}
	rule("add", prio, a.Addr, b.Addr)
	rule("add", prio+1, b.Addr, a.Addr)
	return func() {
		rule("del", prio, a.Addr, b.Addr)
		rule("del", prio+1, b.Addr, a.Addr)
	}
}

// Lossy drops percent of the packets between a and b at the router, both
// ways, at random (nftables' numgen: the kernel here has no netem). The
// returned func makes the link clean again.
func (n *Net) Lossy(a, b *Host, percent int) (clean func()) {
	n.t.Helper()
	RequireTool(n.t, "nft")
	table := n.id
	rules := fmt.Sprintf(`table ip %s {
	chain forward {
		type filter hook forward priority 0; policy accept;
		ip saddr %s ip daddr %s numgen random mod 100 < %d drop
		ip saddr %s ip daddr %s numgen random mod 100 < %d drop
	}
}
`, table, a.Addr, b.Addr, percent, b.Addr, a.Addr, percent)
	cmd := exec.Command("ip", "netns", "exec", n.router, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		n.t.Fatalf("nft: %v\n%s", err, out)
	}
	return func() { n.in(n.router, "nft", "delete", "table", "ip", table) }
}

// Start runs bin on the host, as Start does on the test's own namespace.
func (h *Host) Start(t testing.TB, name, bin string, env ...string) *Proc {
	t.Helper()
	return startArgs(t, name, []string{"ip", "netns", "exec", h.NS, bin}, env...)
}

// StartBroker starts the broker program on the host's address.
func (h *Host) StartBroker(t testing.TB) *Broker {
	t.Helper()
	b := &Broker{DataDir: t.TempDir(), bin: Binaries(t).Broker, t: t, host: h}
	b.start(h.Addr + ":9092")
	return b
}

func (n *Net) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs a command inside namespace ns.
func (n *Net) in(ns string, args ...string) {
	n.t.Helper()
	n.ip(append([]string{"netns", "exec", ns}, args...)...)
}

// remove deletes the namespaces (their links go with them) and our end of
// the router's link (the route goes with it).
func (n *Net) remove() {
	n.mu.Lock()
	hosts := n.hosts
	n.mu.Unlock()
	for _, h := range hosts {
		_ = exec.Command("ip", "netns", "del", h.NS).Run()
	}
	_ = exec.Command("ip", "netns", "del", n.router).Run()
	_ = exec.Command("ip", "link", "del", n.id+"t").Run()
}
