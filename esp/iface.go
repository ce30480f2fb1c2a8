package esp

import (
	"errors"
	"fmt"
	"maps"

	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// Route-based conns. A route-based conn has a device of its own (a TUN,
// the userspace counterpart of a VTI or XFRM interface): what the host
// routes into that device is looked up in the device's own policies and
// sealed with the conn's SAs, and what those SAs decrypt comes out of
// that device (sad.Config.Interface names it). The host's routing table,
// not the main SPD, decides which tunnel carries a packet, so two conns
// with the same selectors (0.0.0.0/0 to 0.0.0.0/0) can coexist.

// AddInterface adds the device of interface ID id (> 0), whose outbound
// packets are classified with pol, and starts reading it. The device must
// have the main TUN's batch size and an MTU no larger than the main TUN's
// (its packets go into the same buffers). The dataplane owns the device
// from here on and closes it on RemoveInterface or Close.
func (d *Dataplane) AddInterface(id uint32, dev tun.Device, pol *spd.Live) error {
	if id == 0 {
		return errors.New("esp: interface ID 0 is the main TUN device")
	}
	if dev.BatchSize() != d.cfg.TUN.BatchSize() || dev.MTU() > max(d.cfg.TUN.MTU(), 1500) {
		return fmt.Errorf("esp: device %s (batch %d, MTU %d) does not fit the main TUN's buffers (batch %d, MTU %d)",
			dev.Name(), dev.BatchSize(), dev.MTU(), d.cfg.TUN.BatchSize(), max(d.cfg.TUN.MTU(), 1500))
	}
	d.ifMu.Lock()
	defer d.ifMu.Unlock()
	if d.closing.Load() {
		return errors.New("esp: dataplane closing")
	}
	m := map[uint32]tun.Device{}
	if old := d.ifaces.Load(); old != nil {
		if _, ok := (*old)[id]; ok {
			return fmt.Errorf("esp: interface ID %d already has a device", id)
		}
		m = maps.Clone(*old)
	}
	m[id] = dev
	d.ifaces.Store(&m)
	if d.started.Load() {
		d.startReader(dev, pol)
	} else {
		d.pending = append(d.pending, pendingReader{dev, pol})
	}
	return nil
}

// RemoveInterface closes the device of interface ID id and stops reading
// it; packets its SAs decrypt after that are dropped.
func (d *Dataplane) RemoveInterface(id uint32) error {
	d.ifMu.Lock()
	old := d.ifaces.Load()
	if old == nil || (*old)[id] == nil {
		d.ifMu.Unlock()
		return fmt.Errorf("esp: no device for interface ID %d", id)
	}
	dev := (*old)[id]
	m := maps.Clone(*old)
	delete(m, id)
	d.ifaces.Store(&m)
	d.ifMu.Unlock()
	return dev.Close()
}

// Interface returns the device of interface ID id.
func (d *Dataplane) Interface(id uint32) (tun.Device, bool) {
	m := d.ifaces.Load()
	if m == nil {
		return nil, false
	}
	dev, ok := (*m)[id]
	return dev, ok
}

// hasInterface reports whether dev is still one of the devices.
func (d *Dataplane) hasInterface(dev tun.Device) bool {
	if m := d.ifaces.Load(); m != nil {
		for _, x := range *m {
			if x == dev {
				return true
			}
		}
	}
	return false
}

// pendingReader is a device added before Start.
type pendingReader struct {
	dev tun.Device
	pol *spd.Live
}

// startReader starts the reader of a route-based conn's device. Called
// with ifMu held, so Close cannot be waiting for the readers yet.
func (d *Dataplane) startReader(dev tun.Device, pol *spd.Live) {
	d.readersDone.Add(1)
	d.wg.Go(func() { d.readFrom(dev, pol) })
}
