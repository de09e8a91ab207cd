package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// errStrings renders a field.ErrorList the way users see it.
func errStrings(errs field.ErrorList) []string {
	if len(errs) == 0 {
		return nil
	}
	out := make([]string, 0, len(errs))
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func ptrTo[T any](v T) *T { return &v }

func typeMeta() metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: "tierra.dev/v1alpha1", Kind: "GpuConfig"}
}
