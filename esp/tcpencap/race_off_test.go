//go:build !race

package tcpencap

const raceEnabled = false
