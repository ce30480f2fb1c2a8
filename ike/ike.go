// Package ike is ipsecgw's IKE negotiator as the rest of the program sees
// it. For now it re-exports the IKEv2 engine (ike/ikev2), which holds the
// Manager; the Manager moves here as the facade over the version engines
// in the following steps.
package ike

import "github.com/ipsecgw/ipsecgw/ike/ikev2"

type (
	Manager          = ikev2.Manager
	Options          = ikev2.Options
	Encapsulation    = ikev2.Encapsulation
	Clock            = ikev2.Clock
	Timer            = ikev2.Timer
	ChildInstaller   = ikev2.ChildInstaller
	OutboundSwitcher = ikev2.OutboundSwitcher
	ChildSA          = ikev2.ChildSA
	State            = ikev2.State
	ConnStatus       = ikev2.ConnStatus
	ChildStatus      = ikev2.ChildStatus
	Counters         = ikev2.Counters
)

var NewManager = ikev2.NewManager

const (
	EncapNAT                 = ikev2.EncapNAT
	EncapAuto                = ikev2.EncapAuto
	EncapUDP                 = ikev2.EncapUDP
	DefaultCookieThreshold   = ikev2.DefaultCookieThreshold
	DefaultCookieThresholdIP = ikev2.DefaultCookieThresholdIP
	DefaultHalfOpenTimeout   = ikev2.DefaultHalfOpenTimeout
	DefaultFragmentSize      = ikev2.DefaultFragmentSize
	MaxHalfOpen              = ikev2.MaxHalfOpen
	StateDown                = ikev2.StateDown
	StateConnecting          = ikev2.StateConnecting
	StateEstablished         = ikev2.StateEstablished
	StatePhase1Failed        = ikev2.StatePhase1Failed
	StatePhase2Failed        = ikev2.StatePhase2Failed
)
