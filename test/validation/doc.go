// Package validation checks what Tierra publishes and renders with the
// kube-apiserver's own code: every ResourceSlice and DeviceClass goes
// through the resource.k8s.io registry strategies (defaulting, handwritten
// and declarative validation) exactly as a create request would.
package validation
