package sim

import (
	"fmt"
	"html"
	"io"
	"strings"
)

var plotColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// WriteSVG draws the allocation curves (arrived load → allocated share of
// GPU capacity) of every scorer as a standalone SVG.
func (r *Report) WriteSVG(w io.Writer) error {
	const (
		width, height = 720, 480
		left, right   = 60, 160
		top, bottom   = 40, 50
	)
	maxX := r.MaxLoad * 100
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	x := func(v float64) float64 { return float64(left) + v/maxX*pw }
	y := func(v float64) float64 { return float64(top) + (1-v/100)*ph }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="20" font-size="14">%s: allocated GPU share vs arrived load (%d GPUs, %d seeds)</text>`+"\n",
		left, html.EscapeString(r.Trace), r.GPUs, len(r.Seeds))
	for v := 0.0; v <= maxX+1e-9; v += 10 {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/><text x="%.1f" y="%d" text-anchor="middle">%.0f</text>`+"\n",
			x(v), top, x(v), height-bottom, x(v), height-bottom+16, v)
	}
	for v := 0.0; v <= 100; v += 10 {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n",
			left, y(v), width-right, y(v), left-6, y(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">arrived GPU requests (%% of capacity)</text>`+"\n", x(maxX/2), height-12)
	fmt.Fprintf(&b, `<text transform="translate(16,%.1f) rotate(-90)" text-anchor="middle">allocated (%% of GPU capacity)</text>`+"\n", y(50))
	for i, s := range r.Summaries {
		color := plotColors[i%len(plotColors)]
		pts := make([]string, len(s.Curve))
		for k, v := range s.Curve {
			pts[k] = fmt.Sprintf("%.1f,%.1f", x(float64(k)), y(v))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		ly := top + 16*i
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s %.2f%%</text>`+"\n",
			width-right+10, ly, width-right+30, ly, color, width-right+36, ly+4, html.EscapeString(s.Scorer), s.AllocAtMax)
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
