package validation

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	resourcev1 "k8s.io/api/resource/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/resource"
	_ "k8s.io/kubernetes/pkg/apis/resource/install" // registers resource.k8s.io in legacyscheme
	"k8s.io/kubernetes/pkg/registry/resource/deviceclass"
	"k8s.io/kubernetes/pkg/registry/resource/resourceslice"
)

// createContext is what the apiserver's handler puts in a create request's
// context for a cluster-scoped resource.k8s.io/v1 object.
func createContext(resourceName string) context.Context {
	ctx := genericapirequest.WithNamespace(context.Background(), "")
	return genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{
		IsResourceRequest: true, Verb: "create", APIGroup: "resource.k8s.io", APIVersion: "v1", Resource: resourceName,
	})
}

// toInternal defaults a v1 object and converts it to the internal type, as
// the apiserver's decoder does.
func toInternal(t *testing.T, in, out runtime.Object) {
	t.Helper()
	in = in.DeepCopyObject()
	legacyscheme.Scheme.Default(in)
	require.NoError(t, legacyscheme.Scheme.Convert(in, out, nil))
}

// validateSlice runs a ResourceSlice through the registry's create path:
// PrepareForCreate (drops disabled fields), then ValidateCreate, which runs
// validation.ValidateResourceSlice, the object-meta checks and the
// declarative validation.
func validateSlice(t *testing.T, slice *resourcev1.ResourceSlice) field.ErrorList {
	t.Helper()
	var internal resource.ResourceSlice
	toInternal(t, slice, &internal)
	ctx := createContext("resourceslices")
	resourceslice.Strategy.PrepareForCreate(ctx, &internal)
	return rest.ValidateCreate(ctx, &internal, resourceslice.Strategy)
}

// validateClass does the same for a DeviceClass.
func validateClass(t *testing.T, class *resourcev1.DeviceClass) field.ErrorList {
	t.Helper()
	var internal resource.DeviceClass
	toInternal(t, class, &internal)
	ctx := createContext("deviceclasses")
	deviceclass.Strategy.PrepareForCreate(ctx, &internal)
	return rest.ValidateCreate(ctx, &internal, deviceclass.Strategy)
}
