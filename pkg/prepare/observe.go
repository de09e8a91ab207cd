package prepare

import (
	"time"

	"github.com/tierra-gpu/tierra/pkg/checkpoint"
)

// Step is one kind of work prepare and unprepare time for an Observer.
type Step string

// The steps an Observer sees.
const (
	// StepTenant is resolving the claim's tenant (namespace labels).
	StepTenant Step = "tenant"
	// StepCheckpoint is one checkpoint write or delete (with its fsyncs, if any).
	StepCheckpoint Step = "checkpoint"
	// StepNVML is one hardware change: create or destroy a MIG instance,
	// set a compute mode.
	StepNVML Step = "nvml"
	// StepCDI is writing or deleting the claim's CDI spec.
	StepCDI Step = "cdi"
	// StepSharing is starting or stopping time-slicing or MPS.
	StepSharing Step = "sharing"
)

// Observer is told how long each step took. It is called concurrently
// from every prepare and unprepare in flight and must be fast; nil (the
// default) costs nothing, not even a clock read.
type Observer func(step Step, took time.Duration)

// start returns the time a step starts, or the zero time without an Observer.
func (p *Preparer) start() time.Time {
	if p.opts.Observe == nil {
		return time.Time{}
	}
	return time.Now()
}

// done reports a step that began at start.
func (p *Preparer) done(step Step, start time.Time) {
	if p.opts.Observe != nil {
		p.opts.Observe(step, time.Since(start))
	}
}

// put writes a checkpoint record, timed.
func (p *Preparer) put(rec checkpoint.Claim) error {
	t := p.start()
	err := p.opts.Store.Put(rec)
	p.done(StepCheckpoint, t)
	return err
}
