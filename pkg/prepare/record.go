package prepare

import (
	"github.com/tierra-gpu/tierra/pkg/cdi"
	"github.com/tierra-gpu/tierra/pkg/checkpoint"
)

// prepare keeps a claim's record as pkg/checkpoint's Claim and writes CDI
// devices as pkg/cdi's, so their real implementations satisfy Store and
// CDIWriter unchanged; prepare itself does no I/O.
var (
	_ Store     = (*checkpoint.Store)(nil)
	_ CDIWriter = (*cdi.Writer)(nil)
	_ GPULocker = (*checkpoint.Store)(nil)
)
