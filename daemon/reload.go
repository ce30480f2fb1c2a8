package daemon

import (
	"errors"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
)

// reload loads the configuration again and applies the difference: a file
// with errors is refused (the running configuration stays), unchanged
// conns are not touched, conns whose CHILD or IKE parameters changed are
// taken down and, if auto=start, brought up again with the new settings.
// It returns what changed, or why the files were refused. systemd hears
// RELOADING=1 before and READY=1 after, refused or not.
func (g *Gateway) reload(load func() (*config.Config, config.Diagnostics, error)) (control.ReloadResult, error) {
	log := g.log
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.notify.Reloading()
	defer func() { g.notify.Ready(g.tunnelStatus()) }()
	newCfg, diags, err := load()
	res := control.ReloadResult{Changes: []control.ConnChange{}, Warnings: []string{}}
	for _, dg := range diags {
		if dg.Severity == config.SeverityWarning {
			log.Warn("config", "diagnostic", dg.String())
			res.Warnings = append(res.Warnings, dg.String())
		} else {
			log.Error("config", "diagnostic", dg.String())
		}
	}
	if newCfg == nil {
		if err == nil {
			err = diags.Err()
		}
		if err == nil {
			err = errors.New("the configuration could not be loaded")
		}
		log.Error("reload refused; the running configuration stays", "err", err)
		return res, err
	}
	oldCfg := g.cfg.Load()
	changes := config.Diff(oldCfg, newCfg)
	var restart []string
	for _, ch := range changes {
		log.Info("config change", "change", ch.String())
		fields := ch.Fields
		if fields == nil {
			fields = []string{}
		}
		res.Changes = append(res.Changes, control.ConnChange{Conn: ch.Name, Kind: ch.Kind.String(), Impact: ch.Impact.String(), Fields: fields})
		if ch.Kind == config.ConnChanged && ch.Impact >= config.ImpactNewChild {
			// The Manager leaves established SAs of remaining conns alone;
			// these need new ones.
			if err := g.ike.Down(ch.Name); err != nil {
				log.Debug("reload: down", "conn", ch.Name, "err", err)
			}
			oc, _ := oldCfg.Conn(ch.Name)
			if oc.Auto == config.AutoRoute && g.inst != nil {
				_ = g.inst.RemoveTrap(ch.Name)
			}
			restart = append(restart, ch.Name)
		}
	}
	// New route-based conns' devices exist before IKE may bring them up.
	g.addInterfaces(newCfg)
	g.ike.ReloadConfig(newCfg)
	g.cfg.Store(newCfg)
	if g.tcp != nil {
		if err := g.tcp.configure(newCfg); err != nil {
			g.log.Error("TCP transport", "err", err)
		}
	}
	g.pruneInterfaces(newCfg)
	if g.guards != nil {
		// Guards of removed or auto=ignore conns go, new conns get theirs.
		if _, err := g.guards.Sync(newCfg); err != nil {
			log.Error("leak guards incomplete", "err", err)
		}
	}
	for _, name := range restart {
		c, ok := newCfg.Conn(name)
		if !ok {
			continue
		}
		switch c.Auto {
		case config.AutoStart:
			if err := g.ike.Up(name); err != nil {
				log.Warn("reload: cannot initiate", "conn", name, "err", err)
			}
		case config.AutoRoute:
			if g.inst != nil {
				if err := g.inst.InstallTrap(c); err != nil {
					log.Warn("reload: cannot install trap policy", "conn", name, "err", err)
				}
			}
		}
	}
	log.Info("configuration reloaded", "conns", len(newCfg.Names()), "changes", len(changes))
	res.Conns = len(newCfg.Names())
	return res, nil
}
