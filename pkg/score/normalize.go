package score

import (
	"cmp"
	"slices"
)

// MaxScore is kube-scheduler's highest node score.
const MaxScore = 100

// Normalize maps ranks to node scores in [0, MaxScore]: the best ranked
// nodes (and only they) get MaxScore, the others fall linearly with their
// position among the distinct ranks, so the scheduler picks among exactly
// the nodes the scorer ranks best.
func Normalize(ranks []Rank) []int64 {
	distinct := slices.Clone(ranks)
	slices.SortFunc(distinct, func(a, b Rank) int {
		return cmp.Or(cmp.Compare(b.Primary, a.Primary), cmp.Compare(b.Secondary, a.Secondary))
	})
	distinct = slices.Compact(distinct)
	out := make([]int64, len(ranks))
	last := int64(len(distinct) - 1)
	for i, r := range ranks {
		pos, _ := slices.BinarySearchFunc(distinct, r, func(a, b Rank) int {
			return cmp.Or(cmp.Compare(b.Primary, a.Primary), cmp.Compare(b.Secondary, a.Secondary))
		})
		switch {
		case pos == 0:
			out[i] = MaxScore
		default:
			out[i] = (MaxScore - 1) * (last - int64(pos)) / last
		}
	}
	return out
}
