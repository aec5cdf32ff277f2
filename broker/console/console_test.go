package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// fixture is a broker with data: two topics with records, and a group
// that consumed part of one and committed, so it has lag.
type fixture struct {
	b     *brokertest.Broker
	base  string // http://host:port
	admin *admin.Client
	lag   admin.GroupLag
}

const (
	ordersTopic   = "orders"
	paymentsTopic = "payments"
	groupID       = "billing"
	ordersCount   = 90 // 30 per partition, round robin
	consumedCount = 60
)

func newFixture(t *testing.T, write bool) *fixture {
	t.Helper()
	b := brokertest.Start(t, func(c *broker.Config) {
		c.GroupInitialRebalanceDelayMs = 0
		c.ConsoleWriteEnable = write
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := admin.New(admin.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	require.NoError(t, a.CreateTopic(ctx, ordersTopic, 3, 1, map[string]string{"retention.ms": "86400000"}))
	require.NoError(t, a.CreateTopic(ctx, paymentsTopic, 1, 1, nil))

	p, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	require.NoError(t, err)
	defer p.Close()
	for i := 0; i < ordersCount; i++ {
		v, _ := json.Marshal(map[string]any{"order": i, "item": "widget", "qty": i % 7})
		r := &kgo.Record{Topic: ordersTopic, Key: []byte(fmt.Sprintf("order-%03d", i)), Value: v,
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("test")}}}
		require.NoError(t, p.ProduceSync(ctx, r).FirstErr())
	}
	for i := 0; i < 5; i++ {
		require.NoError(t, p.ProduceSync(ctx, &kgo.Record{Topic: paymentsTopic, Value: []byte{0xde, 0xad, byte(i)}}).FirstErr())
	}

	c, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(ordersTopic), kgo.ConsumerGroup(groupID),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond), kgo.FetchMaxBytes(1), kgo.FetchMaxPartitionBytes(1))
	require.NoError(t, err)
	var recs []*kgo.Record
	for len(recs) < consumedCount {
		fs := c.PollRecords(ctx, consumedCount-len(recs))
		require.NoError(t, ctx.Err())
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		recs = append(recs, fs.Records()...)
	}
	require.NoError(t, c.CommitRecords(ctx, recs...))
	c.Close() // the group becomes Empty with its offsets kept

	lags, err := a.Lag(ctx, groupID)
	require.NoError(t, err)
	require.NoError(t, lags.FirstErr())
	require.Greater(t, lags[0].Total, int64(0))
	return &fixture{b: b, base: "http://" + b.HTTPAddr(), admin: a, lag: lags[0]}
}

func get(t *testing.T, cl *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := cl.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// TestPagesRender: every page renders the fixture's data, and the
// security headers forbid scripts and foreign resources.
func TestPagesRender(t *testing.T) {
	f := newFixture(t, false)
	cl := &http.Client{Timeout: 10 * time.Second}
	for path, wants := range map[string][]string{
		"/":                  {"Overview", `id="partitions">4<`},
		"/topics":            {ordersTopic, paymentsTopic, "1d"},
		"/topics?internal=1": {"__consumer_offsets"},
		"/topics/orders":     {"partitions-table", "DYNAMIC_TOPIC_CONFIG", "retention.ms"},
		"/topics/orders/messages?partition=1&offset=0&n=5&format=json": {"order-001", "&#34;item&#34;: &#34;widget&#34;", "source"},
		"/topics/payments/messages?partition=0&format=hex":             {"00000000  de ad 00"},
		"/groups":         {groupID, "Empty"},
		"/groups/billing": {"lag-table", fmt.Sprintf(`id="group-lag">%d<`, f.lag.Total)},
		"/brokers":        {"controller", "this node"},
	} {
		resp, err := cl.Get(f.base + path)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'none'", path)
		for _, w := range wants {
			require.Contains(t, string(body), w, path)
		}
		require.NotContains(t, string(body), "<script", path)
	}
	for _, path := range []string{"/topics/nope", "/groups/nope", "/topics/orders/messages?partition=7"} {
		code, _ := get(t, cl, f.base+path)
		require.NotEqual(t, http.StatusOK, code, path)
	}
	// Read-only by default: a POST is refused even with a token.
	resp, err := cl.PostForm(f.base+"/topics", url.Values{"name": {"x"}, "partitions": {"1"}, "replication": {"1"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]{32})"`)

// TestWriteActions: with console.write.enable, a POST with the page's
// CSRF token creates and deletes a topic and resets a group's offsets; a
// POST without the token, or from another origin, is refused.
func TestWriteActions(t *testing.T) {
	f := newFixture(t, true)
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Timeout: 30 * time.Second, Jar: jar}
	code, body := get(t, cl, f.base+"/topics")
	require.Equal(t, http.StatusOK, code)
	m := csrfRe.FindStringSubmatch(body)
	require.NotNil(t, m, "the create form carries a CSRF token")
	tok := m[1]
	ctx := context.Background()

	// No token, a wrong token, a foreign origin: refused, nothing made.
	for _, form := range []url.Values{{"name": {"evil"}, "partitions": {"1"}, "replication": {"1"}},
		{"csrf": {strings.Repeat("0", 32)}, "name": {"evil"}, "partitions": {"1"}, "replication": {"1"}}} {
		resp, err := cl.PostForm(f.base+"/topics", form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.base+"/topics", strings.NewReader(url.Values{"csrf": {tok}, "name": {"evil"}, "partitions": {"1"}, "replication": {"1"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://attacker.example")
	resp, err := cl.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	listed, err := f.admin.ListTopics(ctx)
	require.NoError(t, err)
	for _, tl := range listed {
		require.NotEqual(t, "evil", tl.Topic)
	}

	// Create.
	resp, err = cl.PostForm(f.base+"/topics", url.Values{"csrf": {tok}, "name": {"created"}, "partitions": {"4"}, "replication": {"1"}})
	require.NoError(t, err)
	body2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body2))
	require.Contains(t, string(body2), "created topic created")
	d, err := f.admin.DescribeTopics(ctx, "created")
	require.NoError(t, err)
	require.Len(t, d[0].Partitions, 4)

	// Delete needs the name typed again.
	resp, err = cl.PostForm(f.base+"/topics/created/delete", url.Values{"csrf": {tok}, "confirm": {"wrong"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	resp, err = cl.PostForm(f.base+"/topics/created/delete", url.Values{"csrf": {tok}, "confirm": {"created"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	code, _ = get(t, cl, f.base+"/topics/created")
	require.Equal(t, http.StatusNotFound, code)

	// Reset the (empty) group to the end: its lag goes to 0.
	resp, err = cl.PostForm(f.base+"/groups/billing/reset", url.Values{"csrf": {tok}, "to": {"latest"}, "topic": {ordersTopic}})
	require.NoError(t, err)
	body2, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body2))
	lags, err := f.admin.Lag(ctx, groupID)
	require.NoError(t, err)
	require.Zero(t, lags[0].Total)
	require.Contains(t, string(body2), `id="group-lag">0<`)

	// Shift back by 5 on every committed partition, then to the start.
	for _, step := range []struct {
		form url.Values
		lag  int64
	}{
		{url.Values{"to": {"shift"}, "shift": {"-5"}}, 15},
		{url.Values{"to": {"earliest"}}, ordersCount},
		{url.Values{"to": {"time"}, "time": {"2000-01-01T00:00:00Z"}}, ordersCount},
	} {
		step.form.Set("csrf", tok)
		resp, err = cl.PostForm(f.base+"/groups/billing/reset", step.form)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, step.form)
		lags, err := f.admin.Lag(ctx, groupID)
		require.NoError(t, err)
		require.Equal(t, step.lag, lags[0].Total, step.form)
	}
}
