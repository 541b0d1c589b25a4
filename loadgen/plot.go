package loadgen

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one latency distribution in a percentile plot.
type Series struct {
	Name   string
	Points []Point
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"}

// pctX maps a percentile to the plot's x: log10(1/(1-p)), so 90, 99, 99.9
// and 99.99 are equally spaced (the HdrHistogram convention). 100 is drawn
// at 99.999.
func pctX(p float64) float64 {
	p = min(p, 99.999)
	return math.Log10(100 / (100 - p))
}

// WritePercentilePlot writes an SVG of latency (ms, log scale) against
// percentile for each series.
func WritePercentilePlot(w io.Writer, title string, series []Series) error {
	const (
		W, H                 = 900.0, 520.0
		left, right, top, bt = 80.0, 250.0, 50.0, 60.0
	)
	pw, ph := W-left-right, H-top-bt
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range series {
		for _, p := range s.Points {
			if p.Ms > 0 {
				lo, hi = min(lo, p.Ms), max(hi, p.Ms)
			}
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 0.1, 1
	}
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	xmax := pctX(99.999)
	px := func(p float64) float64 { return left + pw*pctX(p)/xmax }
	py := func(ms float64) float64 {
		ms = max(ms, math.Pow(10, ylo))
		return top + ph*(1-(math.Log10(ms)-ylo)/(yhi-ylo))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="28" font-size="16" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	// Grid and axes.
	for e := ylo; e <= yhi; e++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, e)
			if v > math.Pow(10, yhi) {
				break
			}
			y := py(v)
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s"/>`+"\n", left, y, left+pw, y, stroke)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, fmtMs(v))
		}
	}
	for _, p := range []float64{0, 50, 90, 99, 99.9, 99.99, 99.999} {
		x := px(p)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, top, x, top+ph)
		label := fmt.Sprintf("%g%%", p)
		if p == 99.999 {
			label = "max"
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+ph+18, label)
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">percentile</text>`+"\n", left+pw/2, H-15)
	fmt.Fprintf(&b, `<text transform="translate(20 %.1f) rotate(-90)" text-anchor="middle">latency (ms, log scale)</text>`+"\n", top+ph/2)
	for i, s := range series {
		col := palette[i%len(palette)]
		var pts []string
		for _, p := range s.Points {
			if p.Ms > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(p.Percentile), py(p.Ms)))
			}
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
		}
		ly := top + 10 + float64(i)*20
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"/>`+"\n", left+pw+15, ly, left+pw+35, ly, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s</text>`+"\n", left+pw+40, ly+4, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtMs(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%gs", v/1000)
	case v >= 1:
		return fmt.Sprintf("%gms", v)
	}
	return fmt.Sprintf("%gµs", v*1000)
}
