package sim

import "github.com/tierra-gpu/tierra/pkg/score"

// Scorer picks the node among the feasible ones. The scorers live in
// pkg/score, shared with the scheduler plugin (cmd/tierra-scheduler).
type Scorer = score.Scorer

// Scorer names.
const (
	ScorerDefault = score.Default
	ScorerRandom  = score.Random
	ScorerBestFit = score.BestFit
	ScorerFrag    = score.Frag
	ScorerYield   = score.Yield
)

// ScorerNames lists the scorers in report order.
func ScorerNames() []string { return score.Names() }

// NewScorer returns the scorer with the given name.
func NewScorer(name string) (Scorer, error) { return score.NewScorer(name) }
