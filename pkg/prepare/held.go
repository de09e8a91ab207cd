package prepare

import "github.com/tierra-gpu/tierra/pkg/slices"

// HeldDevices returns, per GPU UUID, the published devices that live claims
// hold on it according to the checkpoint records (any phase: a half-done
// prepare or unprepare holds its GPU until it is undone) and how they hold
// it. Admin-access devices are left out: they hold the GPU against nobody.
// It reads the records on disk, so it sees every plugin process of the
// node, and changes nothing.
func (p *Preparer) HeldDevices() map[string][]slices.Held {
	out := map[string][]slices.Held{}
	for _, r := range p.opts.Store.List() {
		for _, d := range r.Devices {
			if d.AdminAccess || d.GPUUUID == "" {
				continue
			}
			out[d.GPUUUID] = append(out[d.GPUUUID], slices.Held{Pool: d.Pool, Device: d.Device, Use: recordUse(r, d)})
		}
	}
	return out
}
