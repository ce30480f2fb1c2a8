// Package settings holds the daemon settings of ipsecgw, everything the
// daemon is told besides the ipsec.conf / ipsec.secrets model of package
// config: file paths, control socket, logging, TUN device, workers,
// retransmission, NAT keepalives, IKE fragmentation, ESP encapsulation and
// the IKE responder's denial-of-service limits. It owns their types
// (Settings, IKESettings), their keys and defaults (DefaultValues; the keys
// are those of ipsecgw.yaml, "tun.mtu" being mtu under tun:) and their
// conversion and checks (Parse), which report every bad value as
// "setting KEY: problem".
//
// The package imports neither viper nor pflag, so package daemon, which
// takes a Settings, builds without them. Reading the settings is the
// command line's job: internal/cli/settings.go merges ipsecgw.yaml, the
// IPSECGW_* environment and the flags with viper and hands the merged
// values to Parse. internal/cli imports daemon and config, so neither of
// them can import the loader and, with it, viper.
package settings
