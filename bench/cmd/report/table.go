package main

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// table is a markdown table; the first column is left-aligned, the others
// right-aligned.
type table struct {
	head []string
	rows [][]string
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) write(w io.Writer) {
	if len(t.rows) == 0 {
		fmt.Fprintln(w, "_no results_")
		fmt.Fprintln(w)
		return
	}
	fmt.Fprintf(w, "| %s |\n", strings.Join(t.head, " | "))
	aligns := make([]string, len(t.head))
	for i := range aligns {
		aligns[i] = "---:"
	}
	aligns[0] = "---"
	fmt.Fprintf(w, "|%s|\n", strings.Join(aligns, "|"))
	for _, r := range t.rows {
		fmt.Fprintf(w, "| %s |\n", strings.Join(r, " | "))
	}
	fmt.Fprintln(w)
}

// num formats a figure with three significant digits, with thousands
// separators for big ones.
func num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v), math.IsInf(v, 0): // missing, or a best-of-none
		return "–"
	case a >= 1000:
		return thousands(int64(math.Round(v)))
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// ratio formats a/b as "1.23×", or "–" when either is missing.
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// none is the value of a missing figure.
var none = math.NaN()

// times formats a ratio already taken ("1.25×"), "–" when unknown.
func times(r float64) string {
	if math.IsNaN(r) || math.IsInf(r, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", r)
}
