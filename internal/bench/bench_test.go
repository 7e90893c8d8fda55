package bench

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   Sample
		want time.Duration
	}{
		{Sample{3, 1, 2}, 2},
		{Sample{4, 1, 3, 2}, 2},
		{Sample{5}, 5},
		{nil, 0},
	} {
		if got := tc.in.Median(); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
