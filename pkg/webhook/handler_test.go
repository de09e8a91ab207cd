package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	resourceapi "k8s.io/api/resource/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2/ktesting"

	"github.com/tierra-gpu/tierra/pkg/tierratest"
	"github.com/tierra-gpu/tierra/pkg/webhook"
)

type classes map[string]*resourceapi.DeviceClass

func (c classes) DeviceClass(_ context.Context, name string) (*resourceapi.DeviceClass, error) {
	if name == "broken" {
		return nil, errors.New("apiserver unavailable")
	}
	if dc, ok := c[name]; ok {
		return dc, nil
	}
	return nil, apierrors.NewNotFound(resourceapi.Resource("deviceclasses"), name)
}

func gpuConfig(sharing string) string {
	return `{"apiVersion":"tierra.dev/v1alpha1","kind":"GpuConfig","sharing":` + sharing + `}`
}

func class(name, config string) *resourceapi.DeviceClass {
	dc := &resourceapi.DeviceClass{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if config != "" {
		dc.Spec.Config = []resourceapi.DeviceClassConfiguration{{DeviceConfiguration: resourceapi.DeviceConfiguration{
			Opaque: &resourceapi.OpaqueDeviceConfiguration{Driver: "gpu.tierra.dev", Parameters: runtime.RawExtension{Raw: []byte(config)}}}}}
	}
	return dc
}

func TestWebhook(t *testing.T) {
	cls := classes{
		"dev.gpu.tierra.dev": class("dev.gpu.tierra.dev", gpuConfig(`{"strategy":"TimeSlicing"}`)),
		"bad.example.com":    class("bad.example.com", gpuConfig(`{"strategy":"Sometimes"}`)),
	}
	tests := map[string]struct {
		claim    *resourceapi.ResourceClaim
		template bool
		version  string
		want     []string // empty: allowed
	}{
		"valid MPS config": {claim: tierratest.MakeClaim("ok", "ns").Request("gpu", "dev.gpu.tierra.dev").
			Config(gpuConfig(`{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":50}}`)).Obj()},
		"no config": {claim: tierratest.MakeClaim("plain", "ns").Request("gpu", "gpu.tierra.dev").Obj()},
		"thread percentage out of range": {claim: tierratest.MakeClaim("hog", "ns").Request("gpu", "dev.gpu.tierra.dev").
			Config(gpuConfig(`{"strategy":"MPS","mps":{"defaultActiveThreadPercentage":150}}`)).Obj(),
			want: []string{"allocation config 1 (FromClaim", "sharing.mps.defaultActiveThreadPercentage", "150", "must be between 1 and 100", "invalid config"}},
		"misspelt field": {claim: tierratest.MakeClaim("typo", "ns").Request("gpu", "dev.gpu.tierra.dev").
			Config(gpuConfig(`{"strategy":"TimeSlicing","timeSlicing":{"intervl":"Long"}}`)).Obj(),
			want: []string{`unknown field "sharing.timeSlicing.intervl"`}},
		"template": {claim: tierratest.MakeClaim("tmpl", "ns").Request("gpu", "dev.gpu.tierra.dev").
			Config(gpuConfig(`{"strategy":"TimeSlicing","timeSlicing":{"interval":"Forever"}}`)).Obj(), template: true,
			want: []string{"sharing.timeSlicing.interval", `"Forever"`, "Default", "Long"}},
		"invalid class config":    {claim: tierratest.MakeClaim("c", "ns").Request("gpu", "bad.example.com").Obj(), want: []string{"Sometimes"}},
		"unreadable class":        {claim: tierratest.MakeClaim("c", "ns").Request("gpu", "broken").Obj(), want: []string{"read DeviceClass broken", "apiserver unavailable"}},
		"missing class":           {claim: tierratest.MakeClaim("c", "ns").Request("gpu", "nosuch").Obj()},
		"another driver's config": {claim: withOtherDriverConfig(tierratest.MakeClaim("c", "ns").Request("gpu", "gpu.example.com").Obj())},
		"firstAvailable subrequest": {claim: tierratest.MakeClaim("fa", "ns").FirstAvailable("gpu", tierratest.Sub("slice", "bad.example.com"), tierratest.Sub("whole", "gpu.tierra.dev")).Obj(),
			want: []string{"FromClass, requests [gpu/slice]", "Sometimes"}},
		"unserved version": {claim: tierratest.MakeClaim("v", "ns").Request("gpu", "gpu.tierra.dev").Obj(), version: "v1beta1",
			want: []string{"matchPolicy Equivalent"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := review(t, webhook.Handler{Classes: cls}, tc.claim, tc.template, tc.version)
			if len(tc.want) == 0 {
				require.True(t, resp.Allowed, "refused: %v", resp.Result)
				return
			}
			require.False(t, resp.Allowed)
			require.NotNil(t, resp.Result)
			assert.Equal(t, metav1.StatusReasonInvalid, resp.Result.Reason)
			for _, s := range tc.want {
				assert.Contains(t, resp.Result.Message, s)
			}
		})
	}
}

func withOtherDriverConfig(c *resourceapi.ResourceClaim) *resourceapi.ResourceClaim {
	c.Spec.Devices.Config = append(c.Spec.Devices.Config, resourceapi.DeviceClaimConfiguration{DeviceConfiguration: resourceapi.DeviceConfiguration{
		Opaque: &resourceapi.OpaqueDeviceConfiguration{Driver: "gpu.example.com", Parameters: runtime.RawExtension{Raw: []byte(`{"anything":1}`)}}}})
	return c
}

func review(t *testing.T, h http.Handler, claim *resourceapi.ResourceClaim, template bool, version string) *admissionv1.AdmissionResponse {
	_, ctx := ktesting.NewTestContext(t)
	if version == "" {
		version = "v1"
	}
	kind := "ResourceClaim"
	var obj any = claim
	if template {
		kind = "ResourceClaimTemplate"
		obj = &resourceapi.ResourceClaimTemplate{ObjectMeta: claim.ObjectMeta, Spec: resourceapi.ResourceClaimTemplateSpec{Spec: claim.Spec}}
	}
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	in := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: types.UID("req-1"), Kind: metav1.GroupVersionKind{Group: "resource.k8s.io", Version: version, Kind: kind},
			Namespace: claim.Namespace, Name: claim.Name, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}}
	body, err := json.Marshal(in)
	require.NoError(t, err)
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, webhook.Path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &out))
	require.NotNil(t, out.Response)
	assert.Equal(t, types.UID("req-1"), out.Response.UID)
	return out.Response
}
