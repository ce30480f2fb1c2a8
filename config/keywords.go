package config

import (
	"slices"
	"sync"
)

// kwAction says what ipsecgw does with a keyword.
type kwAction uint8

const (
	kwUsed    kwAction = iota + 1 // parsed, validated and acted upon
	kwIgnored                     // accepted (strongSwan/Libreswan know it) but not acted upon yet: warning
	kwSilent                      // accepted and harmless to ignore (documentation-like): no warning
)

type keyword struct {
	action kwAction
	// canonical is the name the value is stored under, so that aliases
	// (keylife/lifetime, rekeymargin/margintime ...) override each other.
	canonical string
	libreswan bool // only the Libreswan/Openswan dialect has it
}

// endKeywords are the suffixes of left*/right* keywords.
var endKeywords = map[string]keyword{
	"":              {action: kwUsed},
	"subnet":        {action: kwUsed},
	"subnets":       {action: kwUsed, libreswan: true},
	"id":            {action: kwUsed},
	"auth":          {action: kwUsed},
	"protoport":     {action: kwUsed},
	"updown":        {action: kwUsed},
	"nexthop":       {action: kwIgnored},
	"sourceip":      {action: kwIgnored},
	"firewall":      {action: kwIgnored},
	"hostaccess":    {action: kwIgnored},
	"cert":          {action: kwUsed},
	"cert2":         {action: kwIgnored},
	"ca":            {action: kwUsed},
	"ca2":           {action: kwIgnored},
	"groups":        {action: kwIgnored},
	"groups2":       {action: kwIgnored},
	"auth2":         {action: kwIgnored},
	"id2":           {action: kwIgnored},
	"sendcert":      {action: kwUsed},
	"dns":           {action: kwIgnored},
	"rsasigkey":     {action: kwIgnored},
	"sigkey":        {action: kwIgnored},
	"allowany":      {action: kwIgnored},
	"certpolicy":    {action: kwIgnored},
	"ikeport":       {action: kwIgnored},
	"xauthserver":   {action: kwIgnored, libreswan: true},
	"xauthclient":   {action: kwIgnored, libreswan: true},
	"xauthusername": {action: kwIgnored, libreswan: true},
	"username":      {action: kwIgnored, libreswan: true},
	"modecfgserver": {action: kwIgnored, libreswan: true},
	"modecfgclient": {action: kwIgnored, libreswan: true},
	"addresspool":   {action: kwIgnored, libreswan: true},
	"vti":           {action: kwUsed, libreswan: true},
	"interface-ip":  {action: kwIgnored, libreswan: true},
	"ckaid":         {action: kwIgnored, libreswan: true},
	"pubkey":        {action: kwIgnored, libreswan: true},
	"cat":           {action: kwIgnored, libreswan: true},
}

// connKeywords are the other keywords of a conn section.
var connKeywords = map[string]keyword{
	"also":           {action: kwUsed},
	"auto":           {action: kwUsed},
	"authby":         {action: kwUsed},
	"keyexchange":    {action: kwUsed},
	"ikev2":          {action: kwUsed, libreswan: true},
	"type":           {action: kwUsed},
	"ike":            {action: kwUsed},
	"esp":            {action: kwUsed},
	"ah":             {action: kwUsed},
	"phase2":         {action: kwUsed, libreswan: true},
	"auth":           {action: kwUsed, canonical: "phase2", libreswan: true}, // Openswan spelling
	"phase2alg":      {action: kwUsed, libreswan: true},
	"pfs":            {action: kwUsed, libreswan: true},
	"pfsgroup":       {action: kwUsed, libreswan: true},
	"ikelifetime":    {action: kwUsed},
	"lifetime":       {action: kwUsed},
	"keylife":        {action: kwUsed, canonical: "lifetime"},
	"salifetime":     {action: kwUsed, canonical: "lifetime", libreswan: true},
	"margintime":     {action: kwUsed},
	"rekeymargin":    {action: kwUsed, canonical: "margintime"},
	"rekeyfuzz":      {action: kwUsed},
	"lifebytes":      {action: kwUsed},
	"lifepackets":    {action: kwUsed},
	"marginbytes":    {action: kwUsed},
	"marginpackets":  {action: kwUsed},
	"keyingtries":    {action: kwUsed},
	"rekey":          {action: kwUsed},
	"reauth":         {action: kwUsed},
	"dpdaction":      {action: kwUsed},
	"dpddelay":       {action: kwUsed},
	"dpdtimeout":     {action: kwUsed},
	"closeaction":    {action: kwUsed},
	"inactivity":     {action: kwUsed},
	"aggressive":     {action: kwUsed},
	"aggrmode":       {action: kwUsed, canonical: "aggressive", libreswan: true},
	"forceencaps":    {action: kwUsed},
	"encapsulation":  {action: kwUsed, canonical: "forceencaps", libreswan: true},
	"mobike":         {action: kwUsed},
	"fragmentation":  {action: kwUsed},
	"ike_frag":       {action: kwUsed, canonical: "fragmentation", libreswan: true},
	"replay_window":  {action: kwUsed},
	"replay-window":  {action: kwUsed, canonical: "replay_window", libreswan: true},
	"esn":            {action: kwUsed, libreswan: true},
	"sha2-truncbug":  {action: kwUsed, libreswan: true},
	"sha2_truncbug":  {action: kwUsed, canonical: "sha2-truncbug", libreswan: true},
	"reqid":          {action: kwUsed},
	"connaddrfamily": {action: kwSilent, libreswan: true},

	// Route-based conns (routed.go) and the order of identical policies
	// (failover.go).
	"mark":            {action: kwUsed},
	"mark_in":         {action: kwUsed},
	"mark_out":        {action: kwUsed},
	"mark-in":         {action: kwUsed, canonical: "mark_in", libreswan: true},
	"mark-out":        {action: kwUsed, canonical: "mark_out", libreswan: true},
	"if_id_in":        {action: kwUsed},
	"if_id_out":       {action: kwUsed},
	"ipsec-interface": {action: kwUsed, libreswan: true},
	"vti-interface":   {action: kwUsed, libreswan: true},
	"vti-shared":      {action: kwSilent, libreswan: true}, // conns with one interface ID share its device anyway
	"priority":        {action: kwUsed},
	"tcpmss":          {action: kwUsed},

	"compress":            {action: kwIgnored},
	"installpolicy":       {action: kwIgnored},
	"ikedscp":             {action: kwIgnored},
	"modeconfig":          {action: kwIgnored},
	"xauth":               {action: kwIgnored},
	"xauth_identity":      {action: kwIgnored},
	"eap":                 {action: kwIgnored},
	"eap_identity":        {action: kwIgnored},
	"aaa_identity":        {action: kwIgnored},
	"tfc":                 {action: kwIgnored},
	"mediation":           {action: kwIgnored},
	"mediated_by":         {action: kwIgnored},
	"me_peerid":           {action: kwIgnored},
	"hw_offload":          {action: kwIgnored},
	"sha256_96":           {action: kwIgnored},
	"interfaces":          {action: kwIgnored},
	"rekeyfuzzbytes":      {action: kwIgnored},
	"failureshunt":        {action: kwIgnored, libreswan: true},
	"negotiationshunt":    {action: kwIgnored, libreswan: true},
	"nat-keepalive":       {action: kwIgnored, libreswan: true},
	"nat_keepalive":       {action: kwIgnored, libreswan: true},
	"nat-ikev1-method":    {action: kwIgnored, libreswan: true},
	"narrowing":           {action: kwIgnored, libreswan: true},
	"sareftrack":          {action: kwIgnored, libreswan: true},
	"overlapip":           {action: kwIgnored, libreswan: true},
	"remote_peer_type":    {action: kwIgnored, libreswan: true},
	"remote-peer-type":    {action: kwIgnored, libreswan: true},
	"nm_configured":       {action: kwIgnored, libreswan: true},
	"metric":              {action: kwIgnored, libreswan: true},
	"mtu":                 {action: kwIgnored, libreswan: true},
	"nic-offload":         {action: kwIgnored, libreswan: true},
	"vti-routing":         {action: kwUsed, libreswan: true},
	"decap-dscp":          {action: kwIgnored, libreswan: true},
	"nopmtudisc":          {action: kwIgnored, libreswan: true},
	"initial-contact":     {action: kwIgnored, libreswan: true},
	"cisco-unity":         {action: kwIgnored, libreswan: true},
	"fake-strongswan":     {action: kwIgnored, libreswan: true},
	"send-vendorid":       {action: kwIgnored, libreswan: true},
	"modecfgpull":         {action: kwIgnored, libreswan: true},
	"modecfgdns":          {action: kwIgnored, libreswan: true},
	"modecfgdomains":      {action: kwIgnored, libreswan: true},
	"modecfgbanner":       {action: kwIgnored, libreswan: true},
	"xauthby":             {action: kwIgnored, libreswan: true},
	"xauthfail":           {action: kwIgnored, libreswan: true},
	"ikepad":              {action: kwIgnored, libreswan: true},
	"retransmit-timeout":  {action: kwIgnored, libreswan: true},
	"retransmit-interval": {action: kwIgnored, libreswan: true},
	"ms-dh-downgrade":     {action: kwIgnored, libreswan: true},
	"dns-match-id":        {action: kwIgnored, libreswan: true},
	"ppk":                 {action: kwIgnored, libreswan: true},
	"intermediate":        {action: kwIgnored, libreswan: true},
	"disablearrivalcheck": {action: kwIgnored, libreswan: true},
	"policy-label":        {action: kwIgnored, libreswan: true},
	"labeled-ipsec":       {action: kwIgnored, libreswan: true},
	"hostaddrfamily":      {action: kwSilent, libreswan: true},
}

// setupKeywords are the keywords of "config setup" of both dialects. None
// of them changes what ipsecgw does (its daemon settings live in
// ipsecgw.yaml), so they are accepted silently; an unknown one gets a
// warning with a suggestion, not an error, because both daemons have grown
// many over the years.
var setupKeywords = map[string]bool{
	"charondebug": true, "uniqueids": true, "cachecrls": true, "strictcrlpolicy": true,
	"charonstart": true, "plutostart": true, "plutodebug": true, "crlcheckinterval": true,
	"nat_traversal": true, "virtual_private": true, "protostack": true, "interfaces": true,
	"oe": true, "plutostderrlog": true, "logfile": true, "logtime": true, "logappend": true,
	"logip": true, "nhelpers": true, "dumpdir": true, "keep_alive": true, "force_keepalive": true,
	"listen": true, "myvendorid": true, "ikeport": true, "nat-ikeport": true, "klipsdebug": true,
	"plutoopts": true, "fragicmp": true, "hidetos": true, "ddos-mode": true, "seedbits": true,
	"secretsfile": true, "ipsecdir": true, "nflog-all": true, "ocspuri": true, "myid": true,
	"pkcs11module": true, "pkcs11keepstate": true, "pkcs11proxy": true, "prepluto": true,
	"postpluto": true, "packetdefault": true, "overridemtu": true, "syslog": true,
	"shuntlifetime": true, "curl-iface": true, "curl-timeout": true, "ikev1-policy": true,
	"dnssec-enable": true, "global-redirect": true, "crl-strict": true, "ocsp-enable": true,
	"ocsp-strict": true, "ocsp-timeout": true, "keep-alive": true,
	"plutorestartoncrash": true, "statsbin": true, "ipsec_interface_managed": true,
}

// caKeywords are accepted in ca sections; ca sections are not used yet.
var caKeywords = map[string]bool{
	"also": true, "auto": true, "cacert": true, "crluri": true, "crluri1": true, "crluri2": true,
	"ocspuri": true, "ocspuri1": true, "ocspuri2": true, "certuribase": true,
}

// lookupConnKeyword finds a conn keyword; side is "left", "right" or "".
func lookupConnKeyword(key string) (kw keyword, side, suffix string, ok bool) {
	for _, s := range []string{"left", "right"} {
		if len(key) >= len(s) && key[:len(s)] == s {
			if e, found := endKeywords[key[len(s):]]; found {
				if e.canonical == "" {
					e.canonical = key
				}
				return e, s, key[len(s):], true
			}
		}
	}
	kw, ok = connKeywords[key]
	if ok && kw.canonical == "" {
		kw.canonical = key
	}
	return kw, "", "", ok
}

// libreswanOnlyKeyword reports whether a keyword marks a file as written
// for Libreswan/Openswan.
func libreswanOnlyKeyword(key string) bool {
	if kw, _, _, ok := lookupConnKeyword(key); ok {
		return kw.libreswan
	}
	switch key {
	case "protostack", "nat_traversal", "virtual_private", "oe", "plutostderrlog", "nhelpers", "klipsdebug":
		return true
	}
	return false
}

var allConnKeywords = sync.OnceValue(func() []string {
	var l []string
	for k := range connKeywords {
		l = append(l, k)
	}
	for k := range endKeywords {
		l = append(l, "left"+k, "right"+k)
	}
	slices.Sort(l)
	return l
})

var allSetupKeywords = sync.OnceValue(func() []string {
	var l []string
	for k := range setupKeywords {
		l = append(l, k)
	}
	slices.Sort(l)
	return l
})
