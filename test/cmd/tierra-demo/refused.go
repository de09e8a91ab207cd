package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/tierra-gpu/tierra/test/cluster"
	"github.com/tierra-gpu/tierra/test/manifests"
)

// RefusedDir holds objects admission must refuse; the demo shows why, and
// the e2e suite requires each refusal.
const RefusedDir = "demo/refused"

// showRefusals applies every file of demo/refused and prints the
// apiserver's refusal. A file that is admitted is an error: the demo would
// otherwise claim a protection it does not have.
func showRefusals(ctx context.Context, c *cluster.Cluster, root string) error {
	a, err := applier(c)
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(root, RefusedDir, "*.yaml"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var errs []error
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		objs, err := manifests.Decode(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		err = a.Apply(ctx, objs...)
		if err == nil {
			errs = append(errs, fmt.Errorf("%s was admitted; admission should have refused it", filepath.Base(f)))
			continue
		}
		fmt.Printf("  %-24s refused: %v\n", filepath.Base(f), err)
	}
	return errors.Join(errs...)
}
