package sim

import "sync"

// runJobs runs jobs 0..n-1, at most parallel at a time, and returns their
// results in job order, or the first error in job order. done sees each
// successful result as it comes, one at a time (progress output).
func runJobs[T any](n, parallel int, run func(i int) (T, error), done func(T)) ([]T, error) {
	results := make([]T, n)
	errs := make([]error, n)
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			results[i], errs[i] = run(i)
			if errs[i] == nil {
				mu.Lock()
				done(results[i])
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}
