package ikev2

import (
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Options configure a Manager.
type Options struct {
	// Config holds the connections and the PSKs. Required.
	Config *config.Config
	// Send transmits one IKE message. local is the address and port it must
	// leave from (port 500, or 4500 once NAT-T is in use: the caller then
	// prepends the non-ESP marker), remote where it goes. It must not keep
	// pkt after returning and must not block for long. Required.
	Send func(local, remote netip.AddrPort, pkt []byte) error
	// Installer receives negotiated CHILD SAs and trap policies. Required.
	Installer ChildInstaller
	// Clock provides time and timers; nil means the real clock.
	Clock Clock
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
	// Retransmit sets retransmission timing; zero fields take strongSwan's
	// defaults (4 s, ×1.8, 5 tries).
	Retransmit config.RetransmitSettings
	// LocalAddrs are the host's addresses. They pick the local address of
	// conns whose local end is %any/%defaultroute, and which conns a
	// responder may use for a request arriving on an address.
	LocalAddrs []netip.Addr
	// CookieThreshold is the number of half-open responder IKE SAs from
	// which IKE_SA_INIT requests must carry a COOKIE (RFC 7296 §2.6);
	// 0 means DefaultCookieThreshold, a negative value disables cookies.
	CookieThreshold int
	// CookieThresholdIP is the number of half-open responder IKE SAs from
	// one peer address from which that address must send a COOKIE, even
	// while the total is below CookieThreshold; 0 means
	// DefaultCookieThresholdIP, a negative value disables this check.
	CookieThresholdIP int
	// HalfOpenTimeout is how long a responder keeps an IKE SA that never
	// completed IKE_AUTH; 0 means DefaultHalfOpenTimeout (strongSwan's 30 s).
	HalfOpenTimeout time.Duration
	// HalfOpenLimit is the most half-open responder IKE SAs kept at once;
	// further IKE_SA_INIT requests are dropped unanswered and counted
	// (Counters.HalfOpenRefused). 0 means MaxHalfOpen.
	HalfOpenLimit int
	// KeyingRetryInterval: when an auto=start conn has used up its
	// keyingtries without an answer, try once more every interval instead
	// of giving up (0, the default, gives up as strongSwan does).
	KeyingRetryInterval time.Duration
	// FragmentSize is the largest IP datagram of an IKE message we send to
	// a peer that supports IKE fragmentation (RFC 7383); larger messages go
	// out as fragments. 0 means DefaultFragmentSize.
	FragmentSize int
	// Encapsulation chooses between raw ESP and ESP in UDP (RFC 3948) when
	// no NAT forces UDP; the zero value is EncapNAT, RFC 7296's behaviour.
	Encapsulation Encapsulation
}

// Encapsulation is the policy for ESP in UDP.
type Encapsulation uint8

const (
	// EncapNAT uses ESP in UDP only when a NAT is detected or the conn
	// sets forceencaps=yes.
	EncapNAT Encapsulation = iota
	// EncapAuto also uses it with peers that announce ipsecgw's Vendor ID:
	// our dataplane moves ESP in UDP with UDP GSO/GRO (one system call per
	// batch), which is much faster than raw ESP's one send per packet.
	// Other peers see standard behaviour.
	EncapAuto
	// EncapUDP uses ESP in UDP with every peer, as if every conn set
	// forceencaps=yes.
	EncapUDP
)

// Defaults of Options fields left zero.
const (
	DefaultCookieThreshold = 30 // strongSwan 5.9 charon.cookie_threshold
	// DefaultCookieThresholdIP is strongSwan 5.9's charon.cookie_threshold_ip.
	DefaultCookieThresholdIP = 3
	DefaultHalfOpenTimeout   = 30 * time.Second
	// CookieSecretLifetime is how long one cookie secret is used before it
	// is replaced; cookies made with the previous secret stay valid.
	CookieSecretLifetime = 2 * time.Minute
	// NonceLen is the length of our nonces (32 bytes, as strongSwan).
	NonceLen = 32
	// MaxHalfOpen is the default of Options.HalfOpenLimit: IKE_SA_INIT
	// requests beyond it are dropped (cookies normally stop floods first).
	MaxHalfOpen = 10000
	// InvalidSPIInterval is the shortest time between two INVALID_SPI
	// notifications on one IKE SA.
	InvalidSPIInterval = 10 * time.Second
	// DNSTimeout bounds the lookup of a peer given by name.
	DNSTimeout = 5 * time.Second
)

// Clock is the source of time and timers. Tests inject a fake one; nil in
// Options means the real clock.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or, for fake clocks, from the
	// goroutine advancing time) once d has elapsed. f must not block.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a timer armed by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not happened yet.
	Stop() bool
}

// ChildInstaller is what the daemon implements to put CHILD SAs into the
// dataplane. Methods are called from IKE SA event loops, concurrently for
// different IKE SAs; they must not call back into the Manager synchronously
// (Acquire may be called from another goroutine).
type ChildInstaller interface {
	// AllocateSPI returns a fresh inbound ESP SPI (>= 256, unused).
	AllocateSPI() (uint32, error)
	// Install installs both directions of a CHILD SA and the policies for
	// its traffic selectors. The installer owns the key slices of sa.
	Install(sa ChildSA) error
	// Remove removes a CHILD SA installed by Install; the installer wipes
	// its keys. inSPI is ours, outSPI the peer's.
	Remove(conn string, inSPI, outSPI uint32) error
	// UpdateRemote moves the CHILD SA installed by Install with our
	// inbound SPI inSPI (and the peer's outSPI) to the peer's new outer
	// address and port: packets go there from now on. IKE calls it when an
	// authenticated message showed that the NAT in front of the peer
	// changed its mapping (RFC 7296 §2.23).
	UpdateRemote(conn string, inSPI, outSPI uint32, remote netip.AddrPort) error
	// InstallTrap installs the trap policies of an auto=route conn: traffic
	// matching them makes the dataplane call Manager.Acquire(conn.Name).
	InstallTrap(conn config.Conn) error
	// RemoveTrap removes the trap policies of a conn.
	RemoveTrap(conn string) error
}

// ChildSA is a negotiated CHILD SA (one pair of ESP SAs) as handed to
// ChildInstaller.Install.
type ChildSA struct {
	Conn string
	// ReqID groups the SAs of one conn (config reqid, or one the Manager
	// assigned); rekeyed SAs keep it.
	ReqID uint32
	// InSPI is the SPI we allocated (peer → us); OutSPI the peer's (us → peer).
	InSPI, OutSPI uint32
	Mode          config.Mode // tunnel or transport
	// Encr and Integ are the ESP transforms (Integ is IntegNone for AEAD).
	Encr, Integ transform.Transform
	ESN         bool
	// Keys, already sliced from KEYMAT (RFC 7296 §2.17) and mapped to our
	// role: In* protect peer → us, Out* us → peer. Encryption keys include
	// the salt of AEAD/CTR ciphers. The installer owns these slices.
	InEncrKey, InIntegKey, OutEncrKey, OutIntegKey []byte
	// Local and Remote are the outer addresses; when Encap is set ESP runs
	// in UDP (RFC 3948) between these ports (4500 unless a NAT changed the
	// peer's port).
	Local, Remote netip.AddrPort
	Encap         bool
	// LocalTS and RemoteTS are the narrowed traffic selectors: packets from
	// LocalTS to RemoteTS go out through this SA.
	LocalTS, RemoteTS []config.TrafficSelector
	// ReplayWindow is the conn's replay_window, -1 for the daemon default.
	ReplayWindow int
	// Lifetime, LifeBytes and LifePackets are the hard limits of the conn
	// (rekeying before them is the Manager's job).
	Lifetime               time.Duration
	LifeBytes, LifePackets uint64
	// SoftBytes and SoftPackets (0: none) are where the dataplane should
	// tell the Manager to rekey (Manager.RekeyChild): lifebytes -
	// marginbytes - fuzz, the volume counterpart of the rekey timer.
	SoftBytes, SoftPackets uint64
	// Initiator says whether we initiated the exchange that created it.
	Initiator bool
	// KeepOutbound asks the installer to install the inbound SA but to
	// keep sending on the conn's current outbound SA when there is one:
	// this SA is the redundant one of a rekey collision (RFC 7296 §2.8.1)
	// and will be deleted at once, so switching to it would leave no
	// outbound SA when it goes.
	KeepOutbound bool
}

// State is the state of a conn as shown by Status.
type State string

// Conn states.
const (
	StateDown         State = "down"
	StateConnecting   State = "connecting"
	StateEstablished  State = "established"
	StatePhase1Failed State = "phase1-failed"
	StatePhase2Failed State = "phase2-failed"
)

// ConnStatus describes one conn.
type ConnStatus struct {
	Name  string
	State State
	// Reason is the last failure, in words that say what to change; empty
	// when nothing failed since the conn was last established.
	Reason string
	// IKE SA (zero when none).
	Initiator     bool
	SPIi, SPIr    uint64
	Local, Remote netip.AddrPort
	LocalID       string
	RemoteID      string
	IKEAlgorithms string // e.g. "aes128-sha256-prfsha256-modp3072"
	NATDetected   bool
	// NATLocal: the peer saw another address than ours (we are behind a
	// NAT), so we are the side that sends NAT keepalives (RFC 3948 §2.3).
	NATLocal    bool
	Established time.Time // IKE SA establishment
	Children    []ChildStatus
}

// ChildStatus describes one installed CHILD SA.
type ChildStatus struct {
	InSPI, OutSPI     uint32
	ESPAlgorithms     string // e.g. "aes128gcm16" or "aes128-sha256-modp2048"
	LocalTS, RemoteTS []config.TrafficSelector
	Encap             bool
	Established       time.Time
}
