package shared

import (
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// ChildInstaller is what the daemon implements to put CHILD SAs into the
// dataplane (the userspace counterpart of the kernel's SA and policy
// interface). Methods are called from IKE SA event loops, concurrently for
// different IKE SAs; they must not call back into the Manager
// synchronously (Acquire may be called from another goroutine).
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
	// SwitchOutbound makes the outbound SA of the CHILD SA with our
	// inbound SPI inSPI (installed with KeepOutbound) the current one of
	// its conn. With it, the responder of a CHILD SA rekey installs the
	// new SA inbound-only and keeps sending on the old one until the
	// initiator, which installs the new inbound SA only when it processes
	// our response, deletes the old SA (as strongSwan does): sending on
	// the new SA right after the response lost the first packet or two,
	// which reached the initiator before it knew the SPI.
	SwitchOutbound(conn string, inSPI uint32) error
}

// ChildSA is a negotiated CHILD SA (one pair of ESP or AH SAs) as handed to
// ChildInstaller.Install.
type ChildSA struct {
	Conn string
	// ReqID groups the SAs of one conn (config reqid, or one the Manager
	// assigned); rekeyed SAs keep it.
	ReqID uint32
	// InSPI is the SPI we allocated (peer → us); OutSPI the peer's (us → peer).
	InSPI, OutSPI uint32
	Mode          config.Mode // tunnel or transport
	// Protocol is ProtoESP or ProtoAH (zero means ESP).
	Protocol Protocol
	// Encr and Integ are the ESP transforms (Integ is IntegNone for AEAD);
	// an AH SA has Integ only (Encr is the zero Transform).
	Encr, Integ transform.Transform
	ESN         bool
	// Keys, already sliced from KEYMAT and mapped to our role: In* protect
	// peer → us, Out* us → peer. Encryption keys include the salt of
	// AEAD/CTR ciphers. The installer owns these slices.
	InEncrKey, InIntegKey, OutEncrKey, OutIntegKey []byte
	// Local and Remote are the outer addresses; when Encap is set ESP runs
	// in UDP (RFC 3948) between these ports (4500 unless a NAT changed the
	// peer's port).
	Local, Remote netip.AddrPort
	Encap         bool
	// LocalTS and RemoteTS are the narrowed traffic selectors: packets from
	// LocalTS to RemoteTS go out through this SA (spd.Pairs makes the
	// policies of them).
	LocalTS, RemoteTS []spd.TS
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
	// keep sending on the conn's current outbound SA when there is one
	// (SwitchOutbound makes it current later): the responder's side of a
	// rekey, or the redundant SA of a rekey collision (RFC 7296 §2.8.1),
	// which is deleted at once, so switching to it would leave no
	// outbound SA when it goes.
	KeepOutbound bool
}

// Encapsulation is the daemon's policy for ESP in UDP (RFC 3948) when no
// NAT forces it.
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
