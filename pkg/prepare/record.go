package prepare

import (
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
)

// The checkpoint record of a claim and the CDI devices of its spec are the
// types of pkg/checkpoint and pkg/cdi, so their real implementations satisfy
// Store and CDIWriter unchanged; prepare itself does no I/O.
type (
	Phase        = checkpoint.Phase
	Record       = checkpoint.Claim
	RecordDevice = checkpoint.Device
	MIGInstance  = checkpoint.MIGInstance
	PlannedMIG   = checkpoint.PlannedMIG
	CDIDevice    = cdi.Device
	CDIMount     = cdi.Mount
)

const (
	PhasePrepareStarted   = checkpoint.PhasePrepareStarted
	PhasePrepared         = checkpoint.PhasePrepared
	PhaseUnprepareStarted = checkpoint.PhaseUnprepareStarted
)

var (
	_ Store     = (*checkpoint.Store)(nil)
	_ CDIWriter = (*cdi.Writer)(nil)
	_ GPULocker = (*checkpoint.Store)(nil)
)
