package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	admissionv1 "k8s.io/api/admission/v1"
	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
)

// Path is where the webhook is served.
const Path = "/validate-resource-claim-parameters"

// maxBody bounds an AdmissionReview (the apiserver's own request limit is 3 MiB).
const maxBody = 3 << 20

// Handler serves AdmissionReview v1 requests for resource.k8s.io/v1
// ResourceClaims and ResourceClaimTemplates. Register it for v1 only with
// matchPolicy Equivalent: the apiserver then converts claims of other
// versions (v1beta1, v1beta2) to v1 before sending them.
type Handler struct {
	Classes ClassGetter
}

func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := klog.FromContext(r.Context())
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		http.Error(w, "read AdmissionReview: body too large or unreadable", http.StatusBadRequest)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprintf("decode AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	req := review.Request
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	if err := h.review(r, req); err != nil {
		logger.V(2).Info("Refused", "kind", req.Kind.Kind, "object", klog.KRef(req.Namespace, req.Name), "err", err.Error())
		resp.Allowed = false
		resp.Result = &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusUnprocessableEntity,
			Reason: metav1.StatusReasonInvalid, Message: err.Error()}
	}
	review.Response, review.Request = resp, nil
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(&review); err != nil {
		logger.Error(err, "Write AdmissionReview response")
	}
}

// review returns why the object is refused, or nil.
func (h Handler) review(r *http.Request, req *admissionv1.AdmissionRequest) error {
	if req.Kind.Group != resourceapi.GroupName || req.Kind.Version != "v1" {
		return fmt.Errorf("%s is not served: register the webhook for resource.k8s.io/v1 with matchPolicy Equivalent", req.Kind)
	}
	var spec *resourceapi.ResourceClaimSpec
	switch req.Kind.Kind {
	case "ResourceClaim":
		var c resourceapi.ResourceClaim
		if err := json.Unmarshal(req.Object.Raw, &c); err != nil {
			return fmt.Errorf("decode ResourceClaim: %w", err)
		}
		spec = &c.Spec
	case "ResourceClaimTemplate":
		var t resourceapi.ResourceClaimTemplate
		if err := json.Unmarshal(req.Object.Raw, &t); err != nil {
			return fmt.Errorf("decode ResourceClaimTemplate: %w", err)
		}
		spec = &t.Spec.Spec
	default:
		return fmt.Errorf("kind %s is not served; want ResourceClaim or ResourceClaimTemplate", req.Kind.Kind)
	}
	return ValidateClaimSpec(r.Context(), spec, h.Classes)
}
