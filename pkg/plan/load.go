package plan

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	resourceapi "k8s.io/api/resource/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/tierra-gpu/tierra/api/tierra.dev/v1alpha1"
)

// ClusterFile describes the nodes of an offline plan (demo/cluster.yaml).
type ClusterFile struct {
	Nodes []NodeSpec `json:"nodes"`
}

// NodeSpec is one node: its name, labels and machine.
type NodeSpec struct {
	Name string `json:"name"`
	// Machine is "fake:<name>" or "" for this host's real GPUs.
	Machine string            `json:"machine"`
	Labels  map[string]string `json:"labels,omitempty"`
	// MIGEnabled puts every MIG-capable GPU into MIG mode before discovery,
	// as an admin would on an inference node.
	MIGEnabled bool `json:"migEnabled,omitempty"`
}

// LoadCluster reads and checks a cluster file (unknown fields are errors).
func LoadCluster(path string) (*ClusterFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	var c ClusterFile
	if err := strictYAML(data, &c); err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	if len(c.Nodes) == 0 {
		return nil, fmt.Errorf("cluster file %s: nodes: at least one node is required", path)
	}
	seen := map[string]bool{}
	for i, n := range c.Nodes {
		if n.Name == "" || seen[n.Name] {
			return nil, fmt.Errorf("cluster file %s: nodes[%d].name: must be set and unique, got %q", path, i, n.Name)
		}
		seen[n.Name] = true
	}
	return &c, nil
}

// LoadPolicy reads a TierPolicy file (v1alpha1.DecodeTierPolicy: strict,
// defaulted and validated).
func LoadPolicy(path string) (*v1alpha1.TierPolicy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tier policy: %w", err)
	}
	p, err := v1alpha1.DecodeTierPolicy(data)
	if err != nil {
		return nil, fmt.Errorf("tier policy %s: %w", path, err)
	}
	return p, nil
}

// LoadClaims reads ResourceClaims and ResourceClaimTemplates (a template
// becomes a claim named after it) from YAML files, or from every *.yaml in
// a directory, in name order. Other kinds (Pods, Namespaces) are skipped.
func LoadClaims(paths ...string) ([]*resourceapi.ResourceClaim, error) {
	var claims []*resourceapi.ResourceClaim
	for _, path := range paths {
		files, err := YAMLFiles(path)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			cs, err := claimsFromFile(f)
			if err != nil {
				return nil, err
			}
			claims = append(claims, cs...)
		}
	}
	return claims, nil
}

// YAMLFiles is path itself, or for a directory its *.yaml and *.yml files,
// recursively, sorted.
func YAMLFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("manifests: %w", err)
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var files []string
	err = filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	sort.Strings(files)
	return files, err
}

func claimsFromFile(path string) ([]*resourceapi.ResourceClaim, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("claims: %w", err)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var claims []*resourceapi.ResourceClaim
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return claims, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		claim, err := decodeClaim(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, doc, err)
		}
		if claim != nil {
			defaultClaim(claim)
			claims = append(claims, claim)
		}
	}
}

func decodeClaim(raw []byte) (*resourceapi.ResourceClaim, error) {
	var meta struct{ Kind string }
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		return nil, err
	}
	switch meta.Kind {
	case "ResourceClaim":
		var c resourceapi.ResourceClaim
		if err := strictYAML(raw, &c); err != nil {
			return nil, err
		}
		return &c, nil
	case "ResourceClaimTemplate":
		var t resourceapi.ResourceClaimTemplate
		if err := strictYAML(raw, &t); err != nil {
			return nil, err
		}
		c := &resourceapi.ResourceClaim{ObjectMeta: t.ObjectMeta, Spec: t.Spec.Spec}
		c.Labels = t.Spec.Labels
		return c, nil
	default:
		return nil, nil
	}
}

// defaultClaim applies what the apiserver defaults in a claim's requests
// (k8s.io/kubernetes pkg/apis/resource/v1 SetDefaults_ExactDeviceRequest and
// SetDefaults_DeviceSubRequest): ExactCount mode, count 1. Without it, a
// manifest the apiserver accepts would be refused here.
func defaultClaim(c *resourceapi.ResourceClaim) {
	set := func(mode *resourceapi.DeviceAllocationMode, count *int64) {
		if *mode == "" {
			*mode = resourceapi.DeviceAllocationModeExactCount
		}
		if *mode == resourceapi.DeviceAllocationModeExactCount && *count == 0 {
			*count = 1
		}
	}
	for i := range c.Spec.Devices.Requests {
		r := &c.Spec.Devices.Requests[i]
		if r.Exactly != nil {
			set(&r.Exactly.AllocationMode, &r.Exactly.Count)
		}
		for j := range r.FirstAvailable {
			set(&r.FirstAvailable[j].AllocationMode, &r.FirstAvailable[j].Count)
		}
	}
}

// strictYAML decodes YAML the way the apiserver's strict field validation
// does: an unknown or duplicated field is an error naming its path, e.g.
// `unknown field "nodes[0].machin"`.
func strictYAML(data []byte, v any) error {
	raw, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(raw, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}
