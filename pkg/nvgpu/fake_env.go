package nvgpu

// FakeStateEnv names a file where a fake machine keeps its hardware state
// (MIG mode, MIG instances, compute modes) across processes, as a real GPU
// keeps it across a crash of the plugin: NewFake loads it when it exists
// and every mutation saves it atomically. Unset, the state lives in memory.
const FakeStateEnv = "TIERRA_FAKE_STATE"
