package console

import (
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/tributary/tributary/broker/metrics"
	"github.com/tributary/tributary/broker/observe"
)

// History bounds: samples kept per series (at the default 5s interval,
// the last 5 minutes) and series tracked, so memory stays bounded however
// many groups and partitions there are (at most maxSeries*historyLen
// int64s, under 4 MB).
const (
	historyLen = 60
	maxSeries  = 8000
)

// history holds the recent samples the console draws: topic rates
// (from two consecutive metric snapshots) and group lag.
type history struct {
	mu        sync.Mutex
	times     []time.Time // ring, oldest first
	prevAt    time.Time
	prev      map[string]metrics.TopicSnapshot
	rates     map[string][3]float64 // topic -> msgs/s, bytes in/s, bytes out/s
	groupLag  map[string][]int64    // group -> total lag per sample (-1: absent)
	partLag   map[partKey][]int64
	partCount int
}

type partKey struct {
	group, topic string
	partition    int32
}

func newHistory() *history {
	return &history{rates: map[string][3]float64{}, groupLag: map[string][]int64{}, partLag: map[partKey][]int64{}}
}

// add records one sample. Groups that vanished keep their series until
// they fall out of the window.
func (h *history) add(now time.Time, totals map[string]metrics.TopicSnapshot, groups []observe.Group, groupsOK bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.prev != nil && totals != nil {
		secs := now.Sub(h.prevAt).Seconds()
		rates := map[string][3]float64{}
		for name, cur := range totals {
			old := h.prev[name]
			if secs > 0 {
				rates[name] = [3]float64{
					float64(max(cur.MessagesIn-old.MessagesIn, 0)) / secs,
					float64(max(cur.BytesIn-old.BytesIn, 0)) / secs,
					float64(max(cur.BytesOut-old.BytesOut, 0)) / secs,
				}
			}
		}
		h.rates = rates
	}
	if totals != nil {
		h.prev, h.prevAt = totals, now
	}
	if !groupsOK {
		return
	}
	h.times = push(h.times, now)
	n := len(h.times)
	seenG := map[string]bool{}
	seenP := map[partKey]bool{}
	for _, g := range groups {
		seenG[g.ID] = true
		h.groupLag[g.ID] = pushSeries(h.groupLag[g.ID], n, g.TotalLag())
		for _, o := range g.Offsets {
			k := partKey{g.ID, o.Topic, o.Partition}
			s, ok := h.partLag[k]
			if !ok && h.partCount >= maxSeries {
				continue
			}
			if !ok {
				h.partCount++
			}
			seenP[k] = true
			h.partLag[k] = pushSeries(s, n, o.Lag)
		}
	}
	for id, s := range h.groupLag {
		if !seenG[id] {
			s = pushSeries(s, n, -1)
			if allAbsent(s) {
				delete(h.groupLag, id)
				continue
			}
			h.groupLag[id] = s
		}
	}
	for k, s := range h.partLag {
		if !seenP[k] {
			s = pushSeries(s, n, -1)
			if allAbsent(s) {
				delete(h.partLag, k)
				h.partCount--
				continue
			}
			h.partLag[k] = s
		}
	}
}

func push(ts []time.Time, t time.Time) []time.Time {
	if len(ts) == historyLen {
		copy(ts, ts[1:])
		ts = ts[:historyLen-1]
	}
	return append(ts, t)
}

// pushSeries appends v, padding a new series with absent samples so that
// every series lines up with h.times (n samples).
func pushSeries(s []int64, n int, v int64) []int64 {
	for len(s) < n-1 {
		s = append(s, -1)
	}
	if len(s) >= n {
		copy(s, s[len(s)-n+1:])
		s = s[:n-1]
	}
	return append(s, v)
}

func allAbsent(s []int64) bool {
	for _, v := range s {
		if v >= 0 {
			return false
		}
	}
	return true
}

func (h *history) topicRate(topic string) (msgs, bytesIn float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.rates[topic]
	return r[0], r[1]
}

func (h *history) totalRates() (in, out, msgs float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.rates {
		msgs += r[0]
		in += r[1]
		out += r[2]
	}
	return in, out, msgs
}

func (h *history) groupChart(id string, w, ht int) template.HTML {
	h.mu.Lock()
	defer h.mu.Unlock()
	return chart(h.groupLag[id], h.times, w, ht, true)
}

func (h *history) partitionChart(id, topic string, partition int32, w, ht int) template.HTML {
	h.mu.Lock()
	defer h.mu.Unlock()
	return chart(h.partLag[partKey{id, topic, partition}], h.times, w, ht, false)
}

// chart draws s as an inline SVG polyline (no script, no external file),
// stretched to the width. Absent samples break the line. With axes it
// labels the maximum and the time the samples span.
func chart(s []int64, times []time.Time, w, h int, axes bool) template.HTML {
	if len(s) == 0 {
		return template.HTML(fmt.Sprintf(`<svg class="chart" width="%d" height="%d" role="img" aria-label="no samples yet"><text x="4" y="%d" class="axis">no samples yet</text></svg>`, w, h, h/2+4))
	}
	var top int64 = 1
	for _, v := range s {
		top = max(top, v)
	}
	padL, padB := 0, 0
	if axes {
		padL, padB = 48, 16
	}
	pw, ph := float64(w-padL-2), float64(h-padB-4)
	if len(s) == 1 {
		s = []int64{s[0], s[0]} // one sample: a flat line across
	}
	// The samples fill the width: the axis says how long they span.
	step := pw / float64(len(s)-1)
	x0 := float64(padL)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="lag over the last %d samples, latest %d">`, w, h, w, h, len(s), s[len(s)-1])
	if axes {
		fmt.Fprintf(&b, `<line x1="%d" y1="2" x2="%d" y2="%d" class="grid"/>`, padL, padL, h-padB)
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" class="grid"/>`, padL, h-padB, w, h-padB)
		fmt.Fprintf(&b, `<text x="%d" y="12" class="axis" text-anchor="end">%d</text>`, padL-4, top)
		fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">0</text>`, padL-4, h-padB)
		if len(times) > 1 {
			span := times[len(times)-1].Sub(times[0]).Round(time.Second)
			fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis">-%s</text>`, padL+2, h-2, span)
			fmt.Fprintf(&b, `<text x="%d" y="%d" class="axis" text-anchor="end">now</text>`, w-2, h-2)
		}
	}
	open := false
	for i, v := range s {
		if v < 0 {
			if open {
				b.WriteString(`"/>`)
				open = false
			}
			continue
		}
		x := x0 + step*float64(i)
		y := 2 + ph - ph*float64(v)/float64(top)
		if !open {
			b.WriteString(`<polyline class="line" points="`)
			open = true
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
	}
	if open {
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
