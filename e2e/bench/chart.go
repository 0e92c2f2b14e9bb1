package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"strings"
)

// series is one line of a chart panel.
type series struct {
	name  string
	color string
	dash  bool
	y     func(Point) float64
}

// panel is one chart of the figure, sharing the time axis.
type panel struct {
	title string
	unit  string
	lines []series
	// limit draws a horizontal threshold (0: none).
	limit float64
	// log draws the values on a logarithmic scale (latencies span from
	// a millisecond to seconds).
	log bool
}

// WriteChart draws the timeline as an SVG figure: latency (p50, p99, max
// of each second), throughput (sent and delivered per second) and
// connections over time.
func WriteChart(path, title string, tl []Point) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writeChart(f, title, tl); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeChart(w io.Writer, title string, tl []Point) error {
	panels := []panel{
		{title: "end-to-end latency (each second's deliveries, log scale)", unit: "ms", limit: 100, log: true, lines: []series{
			{"p50", "#1f77b4", false, func(p Point) float64 { return p.P50 }},
			{"p99", "#d62728", false, func(p Point) float64 { return p.P99 }},
		}},
		{title: "throughput", unit: "msg/s", lines: []series{
			{"delivered/s", "#2ca02c", false, func(p Point) float64 { return p.DeliveredPS }},
			{"sent/s", "#ff7f0e", true, func(p Point) float64 { return p.SentPS }},
		}},
		{title: "connections", unit: "", lines: []series{
			{"connections", "#9467bd", false, func(p Point) float64 { return float64(p.Conns) }},
		}},
		{title: "CPU", unit: "% of machine", limit: 80, lines: []series{
			{"servers", "#8c564b", false, func(p Point) float64 { return p.CPUPercent }},
			{"load generator", "#7f7f7f", true, func(p Point) float64 { return p.GenCPU }},
		}},
	}
	const (
		width   = 960
		left    = 80
		right   = 20
		top     = 40
		ph      = 150 // panel height
		gap     = 45
		plotW   = width - left - right
		ticksY  = 4
		bottomM = 40
	)
	height := top + len(panels)*(ph+gap) + bottomM
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	tMax := 1.0
	if len(tl) > 0 {
		tMax = math.Max(1, tl[len(tl)-1].T)
	}
	x := func(t float64) float64 { return left + t/tMax*plotW }
	for i, p := range panels {
		y0 := float64(top + i*(ph+gap) + 20)
		yMax := 0.0
		for _, s := range p.lines {
			for _, pt := range tl {
				yMax = math.Max(yMax, s.y(pt))
			}
		}
		if p.limit > 0 && yMax > p.limit*0.5 {
			yMax = math.Max(yMax, p.limit)
		}
		yMax = niceCeil(yMax)
		y := func(v float64) float64 { return y0 + ph - v/yMax*ph }
		ticks := make([]float64, 0, ticksY+1)
		for k := 0; k <= ticksY; k++ {
			ticks = append(ticks, yMax*float64(k)/ticksY)
		}
		if p.log {
			// Decades from 0.1 ms to the first power of ten above the
			// largest value.
			top := math.Max(1000, math.Pow(10, math.Ceil(math.Log10(math.Max(yMax, 1)))))
			lo := math.Log10(0.1)
			hi := math.Log10(top)
			y = func(v float64) float64 {
				return y0 + ph - (math.Log10(math.Max(v, 0.1))-lo)/(hi-lo)*ph
			}
			yMax = top
			ticks = ticks[:0]
			for v := 0.1; v <= top*1.001; v *= 10 {
				ticks = append(ticks, v)
			}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(p.title))
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", left, y0, plotW, ph)
		for _, v := range ticks {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", left, left+plotW, y(v), y(v))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y(v)+4, fmtNum(v))
		}
		if p.unit != "" {
			fmt.Fprintf(&b, `<text x="14" y="%.0f" transform="rotate(-90 14 %.0f)" text-anchor="middle">%s</text>`+"\n",
				y0+ph/2, y0+ph/2, html.EscapeString(p.unit))
		}
		if p.limit > 0 && p.limit <= yMax {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#d62728" stroke-dasharray="2,3"/>`+"\n",
				left, left+plotW, y(p.limit), y(p.limit))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#d62728">%s %s</text>`+"\n",
				left+plotW-4, y(p.limit)-3, fmtNum(p.limit), html.EscapeString(p.unit))
		}
		for j, s := range p.lines {
			dash := ""
			if s.dash {
				dash = ` stroke-dasharray="6,4"`
			}
			// On a log scale a second without deliveries has no latency:
			// the line breaks there.
			var pts []string
			line := func() {
				if len(pts) > 0 {
					fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6"%s points="%s"/>`+"\n", s.color, dash, strings.Join(pts, " "))
				}
				pts = pts[:0]
			}
			for _, pt := range tl {
				v := s.y(pt)
				if p.log && v <= 0 {
					line()
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.T), y(math.Min(v, yMax))))
			}
			line()
			lx := left + 10 + j*120
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.0f" y2="%.0f" stroke="%s" stroke-width="3"%s/>`+"\n", lx+plotW-280, lx+plotW-262, y0+12, y0+12, s.color, dash)
			fmt.Fprintf(&b, `<text x="%d" y="%.0f">%s</text>`+"\n", lx+plotW-258, y0+16, html.EscapeString(s.name))
		}
	}
	// Time axis.
	yAxis := float64(top + len(panels)*(ph+gap))
	step := niceCeil(tMax / 10)
	for t := 0.0; t <= tMax+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", x(t), yAxis, fmtNum(t))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="middle">time (s)</text>`+"\n", left+plotW/2, yAxis+18)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}
