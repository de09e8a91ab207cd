package allocator

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/dynamic-resource-allocation/structured"
)

func TestFeatureSetsSelectAnAllocator(t *testing.T) {
	for name, f := range map[string]structured.Features{"scheduler": SchedulerFeatures, "alpha": AlphaFeatures} {
		t.Run(name, func(t *testing.T) {
			_, err := structured.NewAllocator(context.Background(), f, structured.AllocatedState{}, NewClassLister(), nil, NewCELCache(10, f))
			require.NoError(t, err)
		})
	}
	assert.False(t, SchedulerFeatures.DerivedAttributes, "alpha gates stay off in the scheduler's default set")
	assert.True(t, AlphaFeatures.DerivedAttributes)
}

func TestClassLister(t *testing.T) {
	l := NewClassLister(&resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	c, err := l.Get("a")
	require.NoError(t, err)
	assert.Equal(t, "a", c.Name)
	_, err = l.Get("b")
	require.ErrorContains(t, err, `device class "b" not found`)
	all, err := l.List()
	require.NoError(t, err)
	assert.Len(t, all, 1)
}
