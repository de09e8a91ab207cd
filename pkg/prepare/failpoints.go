package prepare

import "github.com/tierra-gpu/tierra/pkg/failpoint"

// Fail points of prepare and unprepare (pkg/failpoint): the crash test
// kills the plugin at each of them and checks that a restart recovers.
const (
	FPPrepareDecoded        = "prepare/decoded"
	FPPrepareStarted        = "prepare/started"
	FPPrepareMIGCreated     = "prepare/mig-created"
	FPPrepareMIGRecorded    = "prepare/mig-recorded"
	FPPrepareModeRecorded   = "prepare/mode-recorded"
	FPPrepareModeSet        = "prepare/mode-set"
	FPPrepareShared         = "prepare/shared"
	FPPrepareCDIWritten     = "prepare/cdi-written"
	FPPreparePrepared       = "prepare/prepared"
	FPUnprepareStarted      = "unprepare/started"
	FPUnprepareCIDestroyed  = "unprepare/ci-destroyed"
	FPUnprepareGIDestroyed  = "unprepare/gi-destroyed"
	FPUnprepareModeRestored = "unprepare/mode-restored"
	FPUnprepareDeviceUndone = "unprepare/device-undone"
	FPUnprepareCDIDeleted   = "unprepare/cdi-deleted"
	FPUnprepareDone         = "unprepare/done"
)

// PrepareFailPoints and UnprepareFailPoints list the fail points in the
// order a claim passes them.
var (
	PrepareFailPoints = []string{FPPrepareDecoded, FPPrepareStarted, FPPrepareMIGCreated, FPPrepareMIGRecorded,
		FPPrepareModeRecorded, FPPrepareModeSet, FPPrepareShared, FPPrepareCDIWritten, FPPreparePrepared}
	UnprepareFailPoints = []string{FPUnprepareStarted, FPUnprepareCIDestroyed, FPUnprepareGIDestroyed,
		FPUnprepareModeRestored, FPUnprepareDeviceUndone, FPUnprepareCDIDeleted, FPUnprepareDone}
)

var hit = failpoint.Hit
