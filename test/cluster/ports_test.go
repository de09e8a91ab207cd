package cluster

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFreePortsAreDistinctAndBelowTheEphemeralRange(t *testing.T) {
	p, err := freePorts()
	require.NoError(t, err)
	all := []int{p.EtcdClient, p.EtcdPeer, p.APIServer, p.Scheduler, p.ControllerMgr, p.Kwok}
	seen := map[int]bool{}
	for _, port := range all {
		assert.GreaterOrEqual(t, port, portMin)
		assert.Less(t, port, portMax)
		assert.False(t, seen[port], "port %d chosen twice", port)
		seen[port] = true
	}
}
