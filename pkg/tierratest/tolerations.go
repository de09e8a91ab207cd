package tierratest

import resourceapi "k8s.io/api/resource/v1"

// Tolerate makes the last request tolerate every taint with the key, of any
// value and effect.
func (w *ClaimWrapper) Tolerate(key string) *ClaimWrapper {
	r := w.last()
	r.Tolerations = append(r.Tolerations, resourceapi.DeviceToleration{Key: key, Operator: resourceapi.DeviceTolerationOpExists})
	return w
}
