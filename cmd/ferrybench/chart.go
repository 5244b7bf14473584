package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart draws two panels, throughput and p99 latency of the 1 KiB tasks
// against concurrency, one line per tool (median) with min–max whiskers.
// It is plain SVG written by hand, so the report needs no plotting module.
func (b *bench) chart() string {
	var xs []string
	for _, n := range b.scenarioNames() {
		if isSmall(n) && n != idleScenario {
			xs = append(xs, n)
		}
	}
	const W, H, panelW, panelH, left, top = 900, 360, 360, 250, 70, 50
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", W, H, W, H)
	s.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&s, `<text x="%d" y="24" font-size="15" font-weight="bold">ferry bench %s: 1 KiB tasks, %d workers (median, min–max)</text>`+"\n", left, html.EscapeString(b.runID), b.o.workers)
	colors := map[string]string{toolFerry: "#1f77b4", toolRaw: "#d62728"}
	panels := []struct {
		title string
		f     func(measurement) float64
	}{
		{"throughput, tasks/s", func(m measurement) float64 { return m.TasksPerSec }},
		{"p99 latency, ms", func(m measurement) float64 { return m.P99ms }},
	}
	for pi, panel := range panels {
		x0 := left + pi*(panelW+100)
		y0 := top
		ymax := 0.0
		for _, x := range xs {
			for _, tool := range []string{toolFerry, toolRaw} {
				for _, v := range b.pick(x, tool, panel.f) {
					ymax = math.Max(ymax, v)
				}
			}
		}
		ymax = niceCeil(ymax)
		fmt.Fprintf(&s, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", x0, y0-10, panel.title)
		fmt.Fprintf(&s, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", x0, y0, panelW, panelH)
		for i := 0; i <= 4; i++ {
			v := ymax * float64(i) / 4
			y := float64(y0+panelH) - float64(panelH)*float64(i)/4
			fmt.Fprintf(&s, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", x0, y, x0+panelW, y)
			fmt.Fprintf(&s, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", x0-6, y+4, trimFloat(v))
		}
		px := func(i int) float64 {
			if len(xs) <= 1 {
				return float64(x0 + panelW/2)
			}
			return float64(x0+30) + float64(panelW-60)*float64(i)/float64(len(xs)-1)
		}
		py := func(v float64) float64 {
			if ymax <= 0 {
				return float64(y0 + panelH)
			}
			return float64(y0+panelH) - float64(panelH)*v/ymax
		}
		for i, x := range xs {
			label := strings.TrimPrefix(x, "1KiB/")
			fmt.Fprintf(&s, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(i), y0+panelH+18, html.EscapeString(label))
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="middle">concurrency per process</text>`+"\n", x0+panelW/2, y0+panelH+38)
		for ti, tool := range []string{toolFerry, toolRaw} {
			var pts []string
			for i, x := range xs {
				sp := spreadOf(b.pick(x, tool, panel.f))
				if !sp.ok() {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(i), py(sp.Med)))
				fmt.Fprintf(&s, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", px(i), py(sp.Min), px(i), py(sp.Max), colors[tool])
				fmt.Fprintf(&s, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s %s: %s</title></circle>`+"\n", px(i), py(sp.Med), colors[tool], tool, html.EscapeString(x), sp.fmt(1))
			}
			if len(pts) > 1 {
				fmt.Fprintf(&s, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[tool])
			}
			fmt.Fprintf(&s, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
				x0+10+ti*110, y0+8, colors[tool], x0+26+ti*110, y0+18, map[string]string{toolFerry: "ferry", toolRaw: "raw loop"}[tool])
		}
	}
	s.WriteString("</svg>\n")
	return s.String()
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*e {
			return m * e
		}
	}
	return 10 * e
}

func trimFloat(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
