package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// chromiumPath finds Debian's chromium. In CI (CI=true) its absence is a
// failure: .ci/run installs it, so missing means the browser test did
// not run, which must not pass silently.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (/usr/bin/chromium); .ci/run installs Debian's chromium package")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the browser test")
	return ""
}

// artifactDir is where screenshots go: $TRIBUTARY_ARTIFACTS/console if
// set (CI keeps it), else a directory of the test's own.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("TRIBUTARY_ARTIFACTS"); d != "" {
		dir := filepath.Join(d, "console")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		return dir
	}
	return t.TempDir()
}

// TestConsoleInBrowser drives the console with headless Chromium against
// a broker with data: every page loads and shows the test's topics,
// partitions, records and group lag; a link leads from the group to its
// topic; the browser reads records from an offset; screenshots of each
// page are saved.
func TestConsoleInBrowser(t *testing.T) {
	path := chromiumPath(t)
	f := newFixture(t, true)
	shots := artifactDir(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, acancel := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer bcancel()

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		require.NoError(t, err, sel)
		return s
	}
	open := func(path string) {
		t.Helper()
		resp, err := chromedp.Run(bctx, chromedp.NavigateResponse(f.base+path))
		require.NoError(t, err, path)
		require.EqualValues(t, 200, resp.Status, path)
	}

	// Overview.
	open("/")
	require.Equal(t, "2", text("#topics"))
	require.Equal(t, "4", text("#partitions"))
	require.Equal(t, "1", text("#groups"))
	shot("overview")

	// Topics list.
	open("/topics")
	tbl := text("#topics-table")
	require.Contains(t, tbl, ordersTopic)
	require.Contains(t, tbl, paymentsTopic)
	require.Contains(t, tbl, fmt.Sprint(ordersCount), "the record count of orders")
	shot("topics")

	// Topic detail: one row per partition, watermarks as produced.
	open("/topics/" + ordersTopic)
	rows, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#partitions-table tbody tr")))
	require.NoError(t, err)
	require.Len(t, rows, 3)
	parts := text("#partitions-table")
	require.Contains(t, parts, fmt.Sprint(ordersCount/3), "each partition's high watermark")
	require.Contains(t, text("#configs-table"), "86400000")
	shot("topic")

	// The group: lag per partition equals admin.Lag's; the chart is
	// drawn once the console has sampled the group (every 5s).
	var lagText string
	deadline := time.Now().Add(30 * time.Second)
	for {
		open("/groups/" + groupID)
		svg, err := chromedp.Run(bctx, chromedp.OuterHTML(chromedp.CSS("#lag-chart svg")))
		require.NoError(t, err)
		if strings.Contains(svg, "<polyline") {
			break
		}
		require.True(t, time.Now().Before(deadline), "the lag chart never got a sample: %s", svg)
		time.Sleep(500 * time.Millisecond)
	}
	require.Equal(t, fmt.Sprint(f.lag.Total), text("#group-lag"))
	lagText = text("#lag-table")
	lagCells, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#lag-table td.lag")))
	require.NoError(t, err)
	require.Len(t, lagCells, len(f.lag.Partitions))
	for i, pl := range f.lag.Partitions {
		got, err := chromedp.Run(bctx, chromedp.Text(chromedp.NodeIDs{lagCells[i].NodeID}))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(pl.Lag), got, "lag of %s[%d]", pl.Topic, pl.Partition)
	}
	require.Contains(t, lagText, ordersTopic)
	shot("group")

	// Groups list, then follow the group's link to its topic.
	open("/groups")
	require.Contains(t, text("#groups-table"), groupID)
	shot("groups")
	open("/groups/" + groupID)
	_, err = chromedp.RunResponse(bctx, chromedp.Click(chromedp.CSS(`#lag-table a[href="/topics/`+ordersTopic+`"]`)))
	require.NoError(t, err)
	loc, err := chromedp.Run(bctx, chromedp.Location())
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(loc, "/topics/"+ordersTopic), loc)
	require.Equal(t, ordersTopic, text("#topic-name"))

	// Browse records of partition 1 from offset 10 with the form, as
	// JSON.
	open("/topics/" + ordersTopic + "/messages?partition=0")
	require.NoError(t, chromedp.Do(bctx,
		chromedp.SetValue(chromedp.CSS(`#browse select[name="partition"]`), "1"),
		chromedp.SetValue(chromedp.CSS(`#browse input[name="offset"]`), "10"),
		chromedp.SetValue(chromedp.CSS(`#browse input[name="n"]`), "5"),
		chromedp.SetValue(chromedp.CSS(`#browse select[name="format"]`), "json"),
	))
	_, err = chromedp.RunResponse(bctx, chromedp.Submit(chromedp.CSS(`#browse`)))
	require.NoError(t, err)
	recs, err := chromedp.Run(bctx, chromedp.Nodes(chromedp.CSSAll("#records-table tbody tr")))
	require.NoError(t, err)
	require.Len(t, recs, 5)
	records := text("#records-table")
	// Round robin put order i in partition i%3 at offset i/3: offset 10
	// of partition 1 is order 31.
	require.Contains(t, records, "order-031")
	require.Contains(t, records, `"item": "widget"`)
	require.NotContains(t, records, "order-028", "offset 9 is before the start")
	shot("messages")

	// Brokers.
	open("/brokers")
	require.Contains(t, text("#brokers-table"), "controller")
	shot("brokers")

	t.Logf("screenshots in %s", shots)
}
