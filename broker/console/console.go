// Package console is the broker's built-in web console and its HTTP
// endpoints: the pages at /, Prometheus metrics at /metrics, and the
// liveness and readiness probes /healthz and /readyz.
//
// Pages are rendered on the server with html/template from templates
// embedded in the binary; there is no JavaScript and nothing is loaded
// from elsewhere, so the console works offline. Lists are paginated (50
// topics, 100 partitions per page) so a broker with 10,000 partitions
// renders a page as fast as one with ten.
//
// The console only reads, through observe.Source, unless
// console.write.enable is set; then it can create and delete topics and
// reset a group's offsets. Those actions are POSTs carrying a CSRF token
// that must match a SameSite=Strict cookie (the double-submit pattern),
// and a cross-site Origin is refused; the broker carries them out with
// its own CreateTopics, DeleteTopics and OffsetCommit handlers
// (observe.Actions), so they pass exactly the checks a client's request
// passes.
package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary/tributary/broker/metrics"
	"github.com/tributary/tributary/broker/observe"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

// Page sizes.
const (
	topicsPerPage     = 50
	partitionsPerPage = 100
	groupsPerPage     = 50
	maxBrowse         = 500
)

// Options configure New.
type Options struct {
	Source observe.Source
	// Metrics is served at /metrics and gives the topic rates; nil
	// serves 404 there and shows no rates.
	Metrics *metrics.Metrics
	// Actions carries out the write actions; they are offered only when
	// WriteEnabled (console.write.enable) is set too.
	Actions      observe.Actions
	WriteEnabled bool
	Logger       *slog.Logger
	// SampleInterval is how often rates and group lag are sampled for
	// the charts (default 5s).
	SampleInterval time.Duration
}

// Console serves the pages. Create it with New, serve Handler, and run
// Run in a goroutine to sample rates and lag.
type Console struct {
	opts  Options
	pages map[string]*template.Template
	hist  *history
	mux   *http.ServeMux
}

// New builds a console.
func New(opts Options) *Console {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.SampleInterval <= 0 {
		opts.SampleInterval = 5 * time.Second
	}
	if opts.Actions == nil {
		opts.WriteEnabled = false
	}
	c := &Console{opts: opts, pages: map[string]*template.Template{}, hist: newHistory()}
	for _, name := range []string{"overview", "topics", "topic", "messages", "groups", "group", "brokers", "error"} {
		c.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(files, "templates/layout.html", "templates/"+name+".html"))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /topics", c.topics)
	mux.HandleFunc("GET /topics/{name}", c.topic)
	mux.HandleFunc("GET /topics/{name}/messages", c.messages)
	mux.HandleFunc("GET /api/topics/{name}", c.topicAPI)
	mux.HandleFunc("GET /groups", c.groups)
	mux.HandleFunc("GET /groups/{id}", c.group)
	mux.HandleFunc("GET /brokers", c.brokers)
	mux.HandleFunc("GET /style.css", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "max-age=3600")
		b, _ := files.ReadFile("templates/style.css")
		w.Write(b)
	})
	mux.HandleFunc("POST /topics", c.createTopic)
	mux.HandleFunc("POST /topics/{name}/delete", c.deleteTopic)
	mux.HandleFunc("POST /groups/{id}/reset", c.resetOffsets)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !opts.Source.Cluster().Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready")
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Metrics.Registry(), promhttp.HandlerOpts{
			ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 4, Timeout: 30 * time.Second,
		}))
	}
	c.mux = mux
	return c
}

// Handler serves the console and the endpoints.
func (c *Console) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// Nothing on these pages comes from elsewhere or runs script.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		c.mux.ServeHTTP(w, r)
	})
}

// Run samples topic rates and group lag every SampleInterval until done
// is closed.
func (c *Console) Run(done <-chan struct{}) {
	c.sample()
	t := time.NewTicker(c.opts.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			c.sample()
		}
	}
}

func (c *Console) sample() {
	now := time.Now()
	var totals map[string]metrics.TopicSnapshot
	if c.opts.Metrics != nil {
		totals = c.opts.Metrics.TopicTotals()
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.SampleInterval)
	defer cancel()
	groups, err := c.opts.Source.Groups(ctx)
	if err != nil {
		groups = nil
	}
	c.hist.add(now, totals, groups, err == nil)
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string
	Write   bool
	CSRF    string
	Flash   string
	Cluster observe.Cluster
	Data    any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name, title string, data any) {
	p := page{Title: title, Nav: name, Write: c.opts.WriteEnabled, Cluster: c.opts.Source.Cluster(), Data: data, Flash: r.URL.Query().Get("flash")}
	if c.opts.WriteEnabled {
		p.CSRF = csrfToken(w, r)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages[name].Execute(w, p); err != nil {
		c.opts.Logger.Warn("console: rendering page", "page", name, "err", err)
	}
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	w.WriteHeader(status)
	c.render(w, r, "error", "Error", msg)
}

// ---- overview

type overviewData struct {
	Topics, Partitions           int // user topics
	Internal, InternalPartitions int
	Groups                       int
	GroupErr                     string
	Size                         int64
	BytesIn, BytesOut, MsgsIn    float64
	Uptime                       time.Duration
	UnderReplicated, Offline     int
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	d := overviewData{}
	for _, t := range c.opts.Source.Topics() {
		if t.Internal {
			d.Internal++
			d.InternalPartitions += len(t.Partitions)
		} else {
			d.Topics++
			d.Partitions += len(t.Partitions)
		}
		for _, p := range t.Partitions {
			d.Size += max(p.Size, 0)
			if p.UnderReplicated() {
				d.UnderReplicated++
			}
			if p.Offline() {
				d.Offline++
			}
		}
	}
	d.BytesIn, d.BytesOut, d.MsgsIn = c.hist.totalRates()
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if gs, err := c.opts.Source.Groups(ctx); err == nil {
		d.Groups = len(gs)
	} else {
		d.GroupErr = err.Error()
	}
	d.Uptime = time.Since(c.opts.Source.Cluster().StartTime).Truncate(time.Second)
	c.render(w, r, "overview", "Overview", d)
}

// ---- topics

type topicRow struct {
	Name              string
	Internal          bool
	Partitions        int
	ReplicationFactor int
	Size              int64
	Records           int64
	Retention         string
	Cleanup           string
	MsgsIn, BytesIn   float64
	UnderReplicated   int
}

type pager struct {
	Page, Pages, Total int
	Prev, Next         string // URLs, "" when none
}

func newPager(r *http.Request, total, per int) (pager, int, int) {
	pg, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max((total+per-1)/per, 1)
	pg = min(max(pg, 1), pages)
	p := pager{Page: pg, Pages: pages, Total: total}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if pg > 1 {
		p.Prev = link(pg - 1)
	}
	if pg < pages {
		p.Next = link(pg + 1)
	}
	from := (pg - 1) * per
	return p, from, min(from+per, total)
}

type topicsData struct {
	Rows   []topicRow
	Pager  pager
	Filter string
	All    bool
}

func (c *Console) topics(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	filter := q.Get("q")
	all := q.Get("internal") == "1"
	var list []observe.Topic
	for _, t := range c.opts.Source.Topics() {
		if (t.Internal && !all) || (filter != "" && !strings.Contains(t.Name, filter)) {
			continue
		}
		list = append(list, t)
	}
	pg, from, to := newPager(r, len(list), topicsPerPage)
	d := topicsData{Pager: pg, Filter: filter, All: all}
	for _, t := range list[from:to] {
		row := topicRow{Name: t.Name, Internal: t.Internal, Partitions: len(t.Partitions), ReplicationFactor: t.ReplicationFactor}
		for _, p := range t.Partitions {
			row.Size += max(p.Size, 0)
			row.Records += max(p.HighWatermark-p.LogStart, 0)
			if p.UnderReplicated() {
				row.UnderReplicated++
			}
		}
		if full, ok := c.opts.Source.Topic(t.Name); ok {
			for _, cf := range full.Configs {
				switch cf.Name {
				case "retention.ms":
					row.Retention = fmtRetention(cf.Value)
				case "cleanup.policy":
					row.Cleanup = cf.Value
				}
			}
		}
		row.MsgsIn, row.BytesIn = c.hist.topicRate(t.Name)
		d.Rows = append(d.Rows, row)
	}
	c.render(w, r, "topics", "Topics", d)
}

type topicData struct {
	Topic      observe.Topic
	Partitions []observe.Partition
	Pager      pager
	Size       int64
	Records    int64
	MsgsIn     float64
	BytesIn    float64
}

func (c *Console) topic(w http.ResponseWriter, r *http.Request) {
	t, ok := c.opts.Source.Topic(r.PathValue("name"))
	if !ok {
		c.fail(w, r, http.StatusNotFound, "no topic "+r.PathValue("name"))
		return
	}
	pg, from, to := newPager(r, len(t.Partitions), partitionsPerPage)
	d := topicData{Topic: t, Partitions: t.Partitions[from:to], Pager: pg}
	for _, p := range t.Partitions {
		d.Size += max(p.Size, 0)
		d.Records += max(p.HighWatermark-p.LogStart, 0)
	}
	d.MsgsIn, d.BytesIn = c.hist.topicRate(t.Name)
	c.render(w, r, "topic", t.Name, d)
}

// TopicJSON is GET /api/topics/{name}: one topic's partitions as this
// node sees them, for tools (`tributary topic describe` reads the dirty
// ratio of compacted partitions from each leader's console). Offsets,
// size and dirty ratio are this node's replica's; -1 where it holds none.
type TopicJSON struct {
	Name       string          `json:"name"`
	Internal   bool            `json:"internal"`
	Partitions []PartitionJSON `json:"partitions"`
}

// PartitionJSON is one partition of TopicJSON.
type PartitionJSON struct {
	Partition     int32   `json:"partition"`
	Leader        int32   `json:"leader"`
	Local         bool    `json:"local"`
	LogStart      int64   `json:"log_start_offset"`
	HighWatermark int64   `json:"high_watermark"`
	LogEnd        int64   `json:"log_end_offset"`
	Size          int64   `json:"size"`
	Segments      int     `json:"segments"`
	Compacted     bool    `json:"compacted"`
	DirtyRatio    float64 `json:"dirty_ratio"` // -1 unless Local and Compacted
}

func (c *Console) topicAPI(w http.ResponseWriter, r *http.Request) {
	t, ok := c.opts.Source.Topic(r.PathValue("name"))
	if !ok {
		http.Error(w, "no topic "+r.PathValue("name"), http.StatusNotFound)
		return
	}
	out := TopicJSON{Name: t.Name, Internal: t.Internal, Partitions: make([]PartitionJSON, 0, len(t.Partitions))}
	for _, p := range t.Partitions {
		pj := PartitionJSON{Partition: p.Partition, Leader: p.Leader, Local: p.Local, LogStart: p.LogStart,
			HighWatermark: p.HighWatermark, LogEnd: p.LogEnd, Size: p.Size, Segments: p.Segments, Compacted: p.Compacted, DirtyRatio: -1}
		if p.Local && p.Compacted {
			pj.DirtyRatio = p.DirtyRatio
		}
		out.Partitions = append(out.Partitions, pj)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}

// ---- message browser

type messagesData struct {
	Topic      observe.Topic
	Partition  int32
	Partitions []int32
	Offset     string
	Time       string
	N          int
	Format     string
	Records    []recordView
	Err        string
	Next       string // URL of the following records
	Start, HW  int64
}

type recordView struct {
	Offset    int64
	Timestamp string
	Key       string
	Value     string
	Headers   []headerView
	KeyNull   bool
	ValueNull bool
}

type headerView struct{ Key, Value string }

func (c *Console) messages(w http.ResponseWriter, r *http.Request) {
	t, ok := c.opts.Source.Topic(r.PathValue("name"))
	if !ok {
		c.fail(w, r, http.StatusNotFound, "no topic "+r.PathValue("name"))
		return
	}
	q := r.URL.Query()
	d := messagesData{Topic: t, Format: q.Get("format"), Offset: q.Get("offset"), Time: q.Get("time")}
	if d.Format != "json" && d.Format != "hex" {
		d.Format = "text"
	}
	for _, p := range t.Partitions {
		d.Partitions = append(d.Partitions, p.Partition)
	}
	if len(d.Partitions) > 1000 {
		d.Partitions = nil // a number field instead of a 10,000-option list
	}
	pi, _ := strconv.Atoi(q.Get("partition"))
	if pi < 0 || pi >= len(t.Partitions) {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("topic %s has no partition %d", t.Name, pi))
		return
	}
	d.Partition = int32(pi)
	part := t.Partitions[pi]
	d.Start, d.HW = part.LogStart, part.HighWatermark
	d.N = 20
	if n, err := strconv.Atoi(q.Get("n")); err == nil {
		d.N = min(max(n, 1), maxBrowse)
	}
	req := observe.ReadRequest{Topic: t.Name, Partition: d.Partition, Offset: part.LogStart, FromTime: -1, Max: d.N}
	switch {
	case d.Time != "":
		ts, err := parseTime(d.Time)
		if err != nil {
			d.Err = err.Error()
			c.render(w, r, "messages", t.Name, d)
			return
		}
		req.FromTime = ts.UnixMilli()
	case d.Offset != "":
		off, err := strconv.ParseInt(d.Offset, 10, 64)
		if err != nil {
			d.Err = fmt.Sprintf("offset %q is not a number", d.Offset)
			c.render(w, r, "messages", t.Name, d)
			return
		}
		if off < 0 { // -N: the last N records
			off = max(part.HighWatermark+off, part.LogStart)
		}
		req.Offset = off
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	recs, err := c.opts.Source.Records(ctx, req)
	if err != nil {
		d.Err = err.Error()
	}
	for _, rec := range recs {
		rv := recordView{Offset: rec.Offset, Timestamp: rec.Timestamp.UTC().Format("2006-01-02 15:04:05.000"),
			Key: formatBytes(rec.Key, d.Format), Value: formatBytes(rec.Value, d.Format), KeyNull: rec.Key == nil, ValueNull: rec.Value == nil}
		for _, h := range rec.Headers {
			rv.Headers = append(rv.Headers, headerView{Key: h.Key, Value: formatBytes(h.Value, d.Format)})
		}
		d.Records = append(d.Records, rv)
	}
	if len(recs) > 0 && recs[len(recs)-1].Offset+1 < part.HighWatermark {
		nq := url.Values{}
		nq.Set("partition", strconv.Itoa(pi))
		nq.Set("offset", strconv.FormatInt(recs[len(recs)-1].Offset+1, 10))
		nq.Set("n", strconv.Itoa(d.N))
		nq.Set("format", d.Format)
		d.Next = r.URL.Path + "?" + nq.Encode()
	}
	c.render(w, r, "messages", t.Name, d)
}

// ---- groups

type groupRow struct {
	observe.Group
	Lag int64
}

type groupsData struct {
	Rows  []groupRow
	Pager pager
	Err   string
}

func (c *Console) groups(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	gs, err := c.opts.Source.Groups(ctx)
	d := groupsData{}
	if err != nil {
		d.Err = err.Error()
	}
	pg, from, to := newPager(r, len(gs), groupsPerPage)
	d.Pager = pg
	for _, g := range gs[from:to] {
		d.Rows = append(d.Rows, groupRow{Group: g, Lag: g.TotalLag()})
	}
	c.render(w, r, "groups", "Consumer groups", d)
}

type lagRow struct {
	observe.GroupOffset
	Chart template.HTML
}

type groupData struct {
	Group   observe.Group
	Lag     int64
	Chart   template.HTML
	Offsets []lagRow
	Pager   pager
	Topics  []string
}

func (c *Console) group(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	gs, err := c.opts.Source.Groups(ctx)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err.Error())
		return
	}
	i := sort.Search(len(gs), func(i int) bool { return gs[i].ID >= id })
	if i == len(gs) || gs[i].ID != id {
		c.fail(w, r, http.StatusNotFound, "no group "+id)
		return
	}
	g := gs[i]
	pg, from, to := newPager(r, len(g.Offsets), partitionsPerPage)
	d := groupData{Group: g, Lag: g.TotalLag(), Pager: pg, Chart: c.hist.groupChart(g.ID, 640, 160)}
	seen := map[string]bool{}
	for _, o := range g.Offsets {
		if !seen[o.Topic] {
			seen[o.Topic] = true
			d.Topics = append(d.Topics, o.Topic)
		}
	}
	for _, o := range g.Offsets[from:to] {
		d.Offsets = append(d.Offsets, lagRow{GroupOffset: o, Chart: c.hist.partitionChart(g.ID, o.Topic, o.Partition, 120, 24)})
	}
	c.render(w, r, "group", g.ID, d)
}

// ---- brokers

func (c *Console) brokers(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "brokers", "Brokers", nil)
}

// ---- write actions

// csrfCookie holds the double-submit token.
const csrfCookie = "tributary_csrf"

// csrfToken returns the browser's token, setting a new one when it has
// none.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 32 {
		return ck.Value
	}
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return tok
}

// checkWrite refuses a POST unless writes are enabled, the form's token
// matches the cookie, and the request is not cross-site.
func (c *Console) checkWrite(w http.ResponseWriter, r *http.Request) bool {
	if !c.opts.WriteEnabled {
		c.fail(w, r, http.StatusForbidden, "write actions are disabled (set console.write.enable=true)")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return false
	}
	ck, err := r.Cookie(csrfCookie)
	form := r.PostForm.Get("csrf")
	if err != nil || len(ck.Value) != 32 || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(form)) != 1 {
		c.fail(w, r, http.StatusForbidden, "missing or wrong CSRF token: reload the page and try again")
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			c.fail(w, r, http.StatusForbidden, "cross-origin request refused")
			return false
		}
	}
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		c.fail(w, r, http.StatusForbidden, "cross-site request refused")
		return false
	}
	return true
}

func redirect(w http.ResponseWriter, r *http.Request, to, flash string) {
	http.Redirect(w, r, to+"?flash="+url.QueryEscape(flash), http.StatusSeeOther)
}

func (c *Console) createTopic(w http.ResponseWriter, r *http.Request) {
	if !c.checkWrite(w, r) {
		return
	}
	name := strings.TrimSpace(r.PostForm.Get("name"))
	parts, err1 := strconv.ParseInt(r.PostForm.Get("partitions"), 10, 32)
	rf, err2 := strconv.ParseInt(r.PostForm.Get("replication"), 10, 16)
	if err1 != nil || err2 != nil {
		c.fail(w, r, http.StatusBadRequest, "partitions and replication factor must be numbers")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err := c.opts.Actions.CreateTopic(ctx, name, int32(parts), int16(rf))
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "create topic "+name+": "+err.Error())
		return
	}
	c.opts.Logger.Info("console: created topic", "topic", name, "remote", r.RemoteAddr)
	redirect(w, r, "/topics/"+url.PathEscape(name), "created topic "+name)
}

func (c *Console) deleteTopic(w http.ResponseWriter, r *http.Request) {
	if !c.checkWrite(w, r) {
		return
	}
	name := r.PathValue("name")
	if r.PostForm.Get("confirm") != name {
		c.fail(w, r, http.StatusBadRequest, "type the topic's name to confirm the delete")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err := c.opts.Actions.DeleteTopic(ctx, name)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "delete topic "+name+": "+err.Error())
		return
	}
	c.opts.Logger.Info("console: deleted topic", "topic", name, "remote", r.RemoteAddr)
	redirect(w, r, "/topics", "deleted topic "+name)
}

func (c *Console) resetOffsets(w http.ResponseWriter, r *http.Request) {
	if !c.checkWrite(w, r) {
		return
	}
	id := r.PathValue("id")
	var spec observe.ResetTarget
	switch to := r.PostForm.Get("to"); to {
	case "earliest":
		spec.Kind = observe.ResetToEarliest
	case "latest":
		spec.Kind = observe.ResetToLatest
	case "time":
		ts, err := parseTime(r.PostForm.Get("time"))
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		spec = observe.ResetTarget{Kind: observe.ResetToTime, Value: ts.UnixMilli()}
	case "shift":
		n, err := strconv.ParseInt(r.PostForm.Get("shift"), 10, 64)
		if err != nil {
			c.fail(w, r, http.StatusBadRequest, "shift must be a number")
			return
		}
		spec = observe.ResetTarget{Kind: observe.ResetShiftBy, Value: n}
	default:
		c.fail(w, r, http.StatusBadRequest, "unknown reset target "+strconv.Quote(to))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	err := c.opts.Actions.ResetGroupOffsets(ctx, id, strings.TrimSpace(r.PostForm.Get("topic")), spec)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, "reset offsets of "+id+": "+err.Error())
		return
	}
	c.opts.Logger.Info("console: reset group offsets", "group", id, "to", r.PostForm.Get("to"), "remote", r.RemoteAddr)
	redirect(w, r, "/groups/"+url.PathEscape(id), "reset the offsets of "+id)
}

// parseTime accepts RFC 3339, "2006-01-02 15:04:05", "2006-01-02T15:04"
// (an HTML datetime-local input; UTC) and Unix milliseconds.
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q: use RFC 3339 (2024-05-01T12:00:00Z), 2024-05-01 12:00:00 (UTC) or Unix milliseconds", s)
}
