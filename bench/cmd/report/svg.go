package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/floodgate-go/floodgate/bench"
)

// A panel is one chart of ratios: one bar per peer.
type panel struct {
	title string
	rows  []svgRow
}

// An svgRow is one peer's bar: its ratio to floodgate, if measured.
type svgRow struct {
	label string
	ratio float64
	ok    bool
}

func panels(r *report) []panel {
	var peers []string
	for _, im := range bench.Impls() {
		if im.Name != reference {
			peers = append(peers, im.Name)
		}
	}
	rows := func(s step, b, unit string, names []string) []svgRow {
		var rs []svgRow
		for _, n := range names {
			v, ok := s.ratio(b, n, unit)
			rs = append(rs, svgRow{n, v, ok})
		}
		return rs
	}
	ps := []panel{}
	for _, w := range bench.Workloads() {
		ps = append(ps, panel{w.Name + " (ns/op)", rows(r.Speed, w.Name, "ns/op", peers)})
	}
	ps = append(ps, panel{"BytesPerKey (B/key)", rows(r.Memory, "BytesPerKey", "B/key", peers)})
	for _, w := range bench.HTTPWorkloads() {
		var rs []svgRow
		for _, im := range httpMiddlewares() {
			if isFloodgateHTTP(im) {
				continue
			}
			v, ok := r.Speed.ratioTo(w.Name, im.Name, httpRef(im), "overhead-ns/op")
			rs = append(rs, svgRow{im.Name, v, ok})
		}
		ps = append(ps, panel{w.Name + " (middleware overhead ns/op, ÷ nethttpmw or echomw for the same framework)", rs})
	}
	if r.Redis.Omitted == "" {
		var names []string
		for _, im := range bench.RedisImpls() {
			if im.Name != reference {
				names = append(names, im.Name)
			}
		}
		for _, b := range []string{"RedisSerial", "RedisParallel"} {
			ps = append(ps, panel{b + " (ns/op)", rows(r.Redis.step, b, "ns/op", names)})
		}
		for _, p := range bench.PacedScenarios() {
			ps = append(ps, panel{p.Name + " (round trips per admitted request)", rows(r.Redis.step, p.Name, "rt/admit", names)})
		}
	}
	return ps
}

// Chart geometry: ratios on a log2 axis from 1/8× to 32×.
const (
	svgWidth  = 780
	labelW    = 120
	plotL     = 130
	plotR     = 740
	rowH      = 18
	titleH    = 24
	panelGap  = 12
	minLog    = -3.0
	maxLog    = 5.0
	headerH   = 56
	barHeight = 12
)

func xOf(ratio float64) float64 {
	l := math.Log2(ratio)
	l = max(minLog, min(maxLog, l))
	return plotL + (l-minLog)/(maxLog-minLog)*(plotR-plotL)
}

// renderSVG draws every peer's ratio to floodgate, one panel per workload.
// Bars right of 1× mean floodgate is faster (or smaller); left, the peer is.
func renderSVG(r *report) string {
	ps := panels(r)
	height := headerH + 30
	for _, p := range ps {
		height += titleH + len(p.rows)*rowH + panelGap
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgWidth, height, svgWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="20" font-size="15" font-weight="bold">Each peer ÷ floodgate (median of per-round ratios, log scale)</text>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="40" fill="#444">Green, right of 1×: floodgate is faster or smaller by that factor. Orange, left: the peer is. %s, %s.</text>`+"\n",
		r.Start.Format("2006-01-02"), esc(r.Machine.CPU))
	y := headerH
	for _, p := range ps {
		fmt.Fprintf(&b, `<text x="10" y="%d" font-weight="bold">%s</text>`+"\n", y+16, esc(p.title))
		top, bottom := y+titleH-4, y+titleH+len(p.rows)*rowH
		for l := minLog; l <= maxLog; l++ {
			x := xOf(math.Exp2(l))
			stroke := "#ddd"
			if l == 0 {
				stroke = "#333"
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x, top, x, bottom, stroke)
		}
		for i, row := range p.rows {
			ry := y + titleH + i*rowH
			fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW, ry+12, esc(row.label))
			ratio := row.ratio
			if !row.ok {
				fmt.Fprintf(&b, `<text x="%.1f" y="%d" fill="#888">not measured</text>`+"\n", xOf(1)+4, ry+12)
				continue
			}
			x0, x1 := xOf(1), xOf(ratio)
			color, anchor, tx := "#2e7d32", "start", x1+4
			if ratio < 1 {
				color, anchor, tx = "#ef6c00", "end", x1-4
				x0, x1 = x1, x0
			}
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>`+"\n", x0, ry+2, math.Max(x1-x0, 1), barHeight, color)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="%s">%s</text>`+"\n", tx, ry+12, anchor, fmtRatio(ratio))
		}
		y += titleH + len(p.rows)*rowH + panelGap
	}
	for l := minLog; l <= maxLog; l++ {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%s</text>`+"\n", xOf(math.Exp2(l)), y+4, fmtRatio(math.Exp2(l)))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func fmtRatio(r float64) string {
	switch {
	case r >= 10:
		return fmt.Sprintf("%.0f×", r)
	case r >= 0.095:
		return fmt.Sprintf("%.2g×", r)
	default:
		return fmt.Sprintf("%.1g×", r)
	}
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
