package score

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// hostTypical is a typical pod asking 4 cpus and 8 GiB per GPU.
func hostTypical(shapes []Shape) []Class {
	return NewClasses([]Typical{{MilliCPU: 4000, Memory: 8 << 30, Milli: 1000, Num: 1, Weight: 1}}, shapes)
}

func TestYieldSendsHostHeavyPodsToHostRichNodes(t *testing.T) {
	shapes := twoShapes()
	classes := hostTypical(shapes)
	// Both nodes have two idle GPUs; tight has the cpu for them and two
	// more cpus, rich has plenty.
	tight := &Node{MilliCPU: 10000, Memory: 64 << 30, GPUs: gpus(0, 1000, 1000)}
	rich := &Node{MilliCPU: 40000, Memory: 64 << 30, GPUs: gpus(0, 1000, 1000)}
	cpuPod := &Pod{MilliCPU: 4000, Memory: 1 << 30}

	ft, fr := rank(t, Frag, tight, cpuPod, shapes, classes), rank(t, Frag, rich, cpuPod, shapes, classes)
	assert.Equal(t, ft, fr, "frag: 6 cpus still fit a typical pod, so both nodes look alike")

	yt, yr := rank(t, Yield, tight, cpuPod, shapes, classes), rank(t, Yield, rich, cpuPod, shapes, classes)
	assert.True(t, yt.Less(yr), "yield ranks the host-rich node first (%v vs %v)", yt, yr)
	assert.Equal(t, -500.0, yt.Primary, "6 cpus feed 1.5 of the 2 idle GPUs at 4 cpus a GPU")
	assert.Zero(t, yr.Primary)

	// A GPU pod asking more cpu per GPU than the node has left for its
	// other GPU goes to the rich node too.
	heavy := &Pod{MilliCPU: 8000, Memory: 1 << 30, Requests: []Request{share(1000, 1, 0)}}
	assert.True(t, rank(t, Yield, tight, heavy, shapes, classes).Less(rank(t, Yield, rich, heavy, shapes, classes)))
}

func TestYieldChecksMemory(t *testing.T) {
	shapes := twoShapes()
	classes := hostTypical(shapes)
	// 6 GiB left: no typical pod fits, so both idle GPUs are fragmented.
	n := &Node{MilliCPU: 40000, Memory: 64 << 30, UsedMemory: 58 << 30, GPUs: gpus(0, 1000, 1000)}
	assert.Zero(t, n.Frag(classes, shapes, nil), "FGD's fragmentation checks cpu only")
	// 2,000 fragmented + 1,250 the 6 GiB cannot feed at 8 GiB a GPU.
	assert.Equal(t, 3250.0, n.HostFrag(classes, shapes, nil))
	n.UsedMemory = 0
	assert.Equal(t, 3250.0, n.HostFrag(classes, shapes, nil), "cached until Changed")
	n.Changed()
	assert.Zero(t, n.HostFrag(classes, shapes, nil))
	assert.Equal(t, 500.0, n.HostFragWith(classes, shapes, nil, 0, 52<<30, nil), "12 GiB left feed 1.5 of the 2 idle GPUs")
}

func TestYieldIsFragWithoutHostDemands(t *testing.T) {
	shapes := twoShapes()
	// The plugin's default target workload names no cpu or memory.
	classes := NewClasses([]Typical{{Milli: 500, Num: 1, Weight: 0.5}, {Milli: 1000, Num: 2, Weight: 0.5}}, shapes)
	nodes := []*Node{
		{MilliCPU: 8000, Memory: 1 << 30, GPUs: gpus(0, 500, 1000)},
		{MilliCPU: 8000, Memory: 1 << 30, GPUs: gpus(0, 1000, 1000, 300)},
	}
	pods := []*Pod{{MilliCPU: 7000, Requests: []Request{share(300, 1, 0)}}, {MilliCPU: 100, Requests: []Request{share(1000, 1, 0)}}}
	for _, n := range nodes {
		for _, p := range pods {
			assert.Equal(t, rank(t, Frag, n, p, shapes, classes), rank(t, Yield, n, p, shapes, classes))
		}
	}
}
