package sdnotify

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends the service's state to systemd. Its methods are safe for
// concurrent use and send in the order they are called.
type Notifier struct {
	log      *slog.Logger
	enabled  bool
	watchdog time.Duration

	mu sync.Mutex
	// stopping: STOPPING=1 was sent; the status of conns going down
	// during the shutdown is not news to anyone.
	stopping bool
}

// FromEnvironment returns a Notifier for the service manager named by
// $NOTIFY_SOCKET (none when unset) with the watchdog interval of
// $WATCHDOG_USEC when $WATCHDOG_PID is unset or this process.
func FromEnvironment(log *slog.Logger) *Notifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{log: log, enabled: os.Getenv("NOTIFY_SOCKET") != ""}
	if n.enabled {
		d, err := daemon.SdWatchdogEnabled(false)
		if err != nil {
			log.Warn("systemd watchdog settings unusable; no WATCHDOG=1 pings", "err", err)
		}
		n.watchdog = d
	}
	return n
}

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.enabled }

// WatchdogInterval is WatchdogSec= (0: no watchdog).
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// send sends one notification of newline-separated assignments.
func (n *Notifier) send(state string) {
	if !n.Enabled() {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", strings.ReplaceAll(state, "\n", " "), "err", err)
	}
}

// statusLine keeps a STATUS= text on one line, as the protocol wants.
func statusLine(s string) string { return "STATUS=" + strings.Join(strings.Fields(s), " ") }

// Ready says the service is up (after start or a reload), with a status.
func (n *Notifier) Ready(status string) { n.send(daemon.SdNotifyReady + "\n" + statusLine(status)) }

// Status updates the status text systemctl status shows (not any more
// once the shutdown began).
func (n *Notifier) Status(status string) {
	if n.Enabled() {
		n.mu.Lock()
		stopping := n.stopping
		n.mu.Unlock()
		if stopping {
			return
		}
	}
	n.send(statusLine(status))
}

// Reloading says a reload began; Ready ends it.
func (n *Notifier) Reloading() {
	n.send(daemon.SdNotifyReloading + "\n" + strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"))
}

// Stopping says the shutdown began.
func (n *Notifier) Stopping() {
	n.send(daemon.SdNotifyStopping)
	if n.Enabled() {
		n.mu.Lock()
		n.stopping = true
		n.mu.Unlock()
	}
}

// RunWatchdog pings systemd's watchdog (WATCHDOG=1) every half interval
// for as long as probe passes, until stop is closed. probe gets a context
// ending at the next ping's time; when it fails, or is still running,
// there is no ping: systemd then restarts the service once a whole
// interval went by without one. Failures are logged when they start and
// end, not at every tick. With no interval it returns at once.
func (n *Notifier) RunWatchdog(stop <-chan struct{}, probe func(context.Context) error) {
	every := n.WatchdogInterval() / 2
	if every <= 0 || !n.Enabled() {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := probe(ctx)
		cancel()
		switch {
		case err == nil:
			if failing {
				n.log.Info("watchdog: the IKE and dataplane loops answer again")
				failing = false
			}
			n.send(daemon.SdNotifyWatchdog)
		case !failing:
			n.log.Error("watchdog: a loop did not answer; no WATCHDOG=1 until it does (systemd restarts the service after WatchdogSec)", "err", err)
			failing = true
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
