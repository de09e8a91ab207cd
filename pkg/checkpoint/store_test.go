package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/inventory"
)

const testBoot = "boot-1"

func makeClaim(uid string) Claim {
	return Claim{
		UID: uid, Namespace: "ns", Name: "claim-" + uid, Tenant: "team-a", Phase: PhasePrepared,
		Devices: []Device{{
			Request: "gpu", Pool: "node-1", Device: "gpu-0-mig-1g-18gb-0", GPUUUID: "GPU-1234",
			Sharing: "Exclusive", PreviousComputeMode: "Default",
			MIG: &MIGInstance{
				Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 2, Size: 1},
				GPUInstanceID: 7, ComputeInstanceID: 0, UUID: "MIG-abcd",
			},
			CDIDeviceIDs: []string{"gpu.tierra.dev/claim=" + uid + "-gpu-0"},
			Config:       json.RawMessage(`{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig"}`),
		}},
	}
}

func openStore(t testing.TB, dir, boot string) (*Store, Report) {
	t.Helper()
	ctx := context.Background()
	if tt, ok := t.(*testing.T); ok {
		_, ctx = ktesting.NewTestContext(tt)
	}
	s, rep, err := Open(ctx, Options{Dir: dir, BootID: boot})
	require.NoError(t, err)
	return s, rep
}

func TestRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Stale)
	assert.Empty(t, rep.Quarantined)
	fi, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	a, b := makeClaim("uid-b"), makeClaim("uid-a")
	b.Phase = PhasePrepareStarted
	b.Devices[0].MIG = nil
	require.NoError(t, s.Put(a))
	require.NoError(t, s.Put(b))

	got, ok := s.Get("uid-b")
	require.True(t, ok)
	assert.Equal(t, a, got)
	_, ok = s.Get("uid-x")
	assert.False(t, ok)

	s2, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Stale)
	assert.Empty(t, rep.Quarantined)
	assert.Equal(t, []Claim{b, a}, s2.List(), "sorted by UID, equal after reopen")

	require.NoError(t, s2.Delete("uid-a"))
	require.NoError(t, s2.Delete("uid-a"), "deleting an absent claim is not an error")
	s3, _ := openStore(t, dir, testBoot)
	assert.Equal(t, []Claim{a}, s3.List())
}

func TestConfigIsStoredCompact(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, testBoot)
	c := makeClaim("uid-1")
	c.Devices[0].Config = json.RawMessage("{\n  \"kind\": \"GpuConfig\"\n}")
	require.NoError(t, s.Put(c))
	got, _ := s.Get("uid-1")
	assert.JSONEq(t, `{"kind":"GpuConfig"}`, string(got.Devices[0].Config))
	s2, _ := openStore(t, dir, testBoot)
	again, _ := s2.Get("uid-1")
	assert.Equal(t, got, again, "the same before and after a restart")
}

func TestStoreDoesNotShareMemory(t *testing.T) {
	s, _ := openStore(t, t.TempDir(), testBoot)
	c := makeClaim("uid-1")
	require.NoError(t, s.Put(c))
	c.Devices[0].CDIDeviceIDs[0] = "changed"
	c.Devices[0].MIG.UUID = "changed"
	got, _ := s.Get("uid-1")
	assert.Equal(t, makeClaim("uid-1"), got)
	got.Devices[0].Config[0] = 'X'
	again, _ := s.Get("uid-1")
	assert.Equal(t, makeClaim("uid-1"), again)
}

func TestPutRejectsInvalidClaim(t *testing.T) {
	tests := map[string]struct {
		mutate func(*Claim)
	}{
		"empty uid":     {func(c *Claim) { c.UID = "" }},
		"path in uid":   {func(c *Claim) { c.UID = "../etc/passwd" }},
		"dot uid":       {func(c *Claim) { c.UID = ".hidden" }},
		"unknown phase": {func(c *Claim) { c.Phase = "Done" }},
		"empty phase":   {func(c *Claim) { c.Phase = "" }},
		"bad config":    {func(c *Claim) { c.Devices[0].Config = []byte("{") }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s, _ := openStore(t, dir, testBoot)
			c := makeClaim("uid-1")
			tc.mutate(&c)
			require.ErrorIs(t, s.Put(c), ErrInvalidClaim)
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing written")
		})
	}
}

// TestLenientDecoding: a newer plugin may add fields; this release must
// still load its records (to unprepare them) and keep checking the checksum.
func TestLenientDecoding(t *testing.T) {
	dir := t.TempDir()
	p := `{"bootID":"` + testBoot + `","futureTop":1,"claim":{"uid":"uid-1","namespace":"ns","name":"c",` +
		`"phase":"Prepared","futureField":{"x":[1,2]},"devices":[{"request":"gpu","pool":"p","device":"gpu-0",` +
		`"gpuUUID":"GPU-1","sharing":"MPS","mpsPipeDir":"/run/x","mig":{"profile":"1g.18gb","placement":{"start":0,"size":1},` +
		`"gpuInstanceID":1,"computeInstanceID":0,"memoryBytes":5}}]}}`
	env := fmt.Sprintf(`{"version":1,"checksum":%q,"payload":%s,"writtenBy":"tierra v9"}`, checksum([]byte(p)), p)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "uid-1.json"), []byte(env), 0o600))

	s, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Quarantined)
	assert.Empty(t, rep.Problems)
	got, ok := s.Get("uid-1")
	require.True(t, ok)
	assert.Equal(t, PhasePrepared, got.Phase)
	require.Len(t, got.Devices, 1)
	assert.Equal(t, "MPS", got.Devices[0].Sharing)
	assert.Equal(t, &MIGInstance{Profile: "1g.18gb", Placement: inventory.MIGPlacement{Start: 0, Size: 1}, GPUInstanceID: 1}, got.Devices[0].MIG)

	// The older plugin can move it on and delete it.
	got.Phase = PhaseUnprepareStarted
	require.NoError(t, s.Put(got))
	require.NoError(t, s.Delete("uid-1"))
}

func TestReboot(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, "boot-old")
	require.NoError(t, s.Put(makeClaim("uid-1")))
	require.NoError(t, s.Put(makeClaim("uid-2")))

	s2, rep := openStore(t, dir, "boot-new")
	assert.Empty(t, s2.List(), "nothing is prepared after a reboot")
	assert.Equal(t, []Claim{makeClaim("uid-1"), makeClaim("uid-2")}, sortedClaims(rep.Stale))
	assert.Empty(t, rep.Quarantined)

	s3, rep := openStore(t, dir, "boot-new")
	assert.Empty(t, s3.List())
	assert.Empty(t, rep.Stale, "stale records are reported once, then gone")
}

func TestDefaultBootID(t *testing.T) {
	if _, err := os.Stat(bootIDPath); err != nil {
		t.Skipf("no %s: %v", bootIDPath, err)
	}
	s, _ := openStore(t, t.TempDir(), "")
	assert.NotEmpty(t, s.BootID())
}

// TestCrashSafety: a write interrupted before its rename leaves a temp file
// and the previous record; Open removes the former and keeps the latter.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	s, _ := openStore(t, dir, testBoot)
	prev := makeClaim("uid-1")
	require.NoError(t, s.Put(prev))
	next := prev.Clone()
	next.Phase = PhaseUnprepareStarted
	data, err := encodeRecord(testBoot, next)
	require.NoError(t, err)
	tmp := filepath.Join(dir, tempPrefix+"uid-1.json-123456")
	require.NoError(t, os.WriteFile(tmp, data[:len(data)/2], 0o600))

	s2, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Quarantined)
	assert.Empty(t, rep.Problems)
	got, ok := s2.Get("uid-1")
	require.True(t, ok)
	assert.Equal(t, prev, got)
	assert.NoFileExists(t, tmp)
}

func TestConcurrentUse(t *testing.T) {
	s, _ := openStore(t, t.TempDir(), testBoot)
	const workers, rounds = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				own := makeClaim(fmt.Sprintf("uid-%d", w))
				shared := makeClaim("uid-shared")
				shared.Name = fmt.Sprintf("w%d-r%d", w, r)
				assert.NoError(t, s.Put(own))
				assert.NoError(t, s.Put(shared))
				_, _ = s.Get("uid-shared")
				_ = s.List()
				if r%2 == 0 {
					assert.NoError(t, s.Delete(own.UID))
				}
			}
		})
	}
	wg.Wait()
	// Memory and disk agree, also for the claim written by all workers.
	s2, rep := openStore(t, s.Dir(), testBoot)
	assert.Empty(t, rep.Problems)
	assert.Equal(t, s.List(), s2.List())
	assert.Len(t, s.List(), workers+1)
}

func sortedClaims(cs []Claim) []Claim {
	s := &Store{claims: map[string]Claim{}}
	for _, c := range cs {
		s.claims[c.UID] = c
	}
	return s.List()
}

// Two plugin processes on one node during a rolling update: a record the
// other process wrote after this one opened the directory is found.
func TestGetReadsRecordsAnotherProcessWrote(t *testing.T) {
	dir := t.TempDir()
	old, _ := openStore(t, dir, testBoot)
	upd, _ := openStore(t, dir, testBoot)
	require.NoError(t, old.Put(makeClaim("late")))

	got, ok := upd.Get("late")
	require.True(t, ok, "record written by the other process")
	assert.Equal(t, makeClaim("late").Devices[0].MIG, got.Devices[0].MIG)
	require.NoError(t, upd.Delete("late"))
	_, ok = old.Get("absent")
	assert.False(t, ok)
	other, _ := openStore(t, t.TempDir(), "boot-2")
	_, ok = other.Get("../late")
	assert.False(t, ok, "a UID that is not a file name")
}

// Without fsync a record is still written atomically and read back by the
// next process (a killed plugin's restart).
func TestProcessCrashDurabilityRoundTrip(t *testing.T) {
	_, ctx := ktesting.NewTestContext(t)
	dir := t.TempDir()
	s, _, err := Open(ctx, Options{Dir: dir, BootID: testBoot, Durability: SurviveProcessCrash})
	require.NoError(t, err)
	require.NoError(t, s.Put(makeClaim("a")))
	require.NoError(t, s.Put(makeClaim("b")))
	require.NoError(t, s.Delete("b"))

	again, rep := openStore(t, dir, testBoot)
	assert.Empty(t, rep.Problems)
	got, ok := again.Get("a")
	require.True(t, ok)
	assert.Equal(t, makeClaim("a").Devices[0].MIG, got.Devices[0].MIG)
	_, ok = again.Get("b")
	assert.False(t, ok)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file left: %v", entries)
}
