package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tributary/tributary/admin"
	"github.com/tributary/tributary/broker"
	"github.com/tributary/tributary/broker/brokertest"
)

// TestTenThousandPartitions: with a 10,000-partition topic every page
// and /metrics answer promptly, partition tables are paginated (100 rows
// a page) and per-partition series stop at metrics.partition.series.max.
func TestTenThousandPartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 partition logs; run without -short")
	}
	b := brokertest.Start(t, func(c *broker.Config) {
		c.LogSegmentBytes = 1 << 20 // small preallocations, if any
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	a, err := admin.New(admin.SeedBrokers(b.Addr()), admin.Timeout(4*time.Minute))
	require.NoError(t, err)
	defer a.Close()
	require.NoError(t, a.CreateTopic(ctx, "wide", 10000, 1, nil))

	base := "http://" + b.HTTPAddr()
	cl := &http.Client{Timeout: 60 * time.Second}
	load := func(path string) string {
		t.Helper()
		start := time.Now()
		resp, err := cl.Get(base + path)
		require.NoError(t, err, path)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		t.Logf("%s: %d bytes in %v", path, len(body), time.Since(start))
		return string(body)
	}
	require.Contains(t, load("/"), `id="partitions">10000<`)
	require.Contains(t, load("/topics"), "wide")
	page := load("/topics/wide")
	require.Equal(t, 100, strings.Count(page, `">messages</a></td></tr>`), "one page of partitions")
	require.Contains(t, page, "page 1 of 100")
	last := load("/topics/wide?page=100")
	require.Contains(t, last, "/topics/wide/messages?partition=9999")
	require.Contains(t, load("/topics/wide/messages?partition=9999"), "No records there.")
	metrics := load("/metrics")
	require.Equal(t, 2000, strings.Count(metrics, "\nkafka_log_log_size{"), "per-partition series capped by metrics.partition.series.max")
	total := regexp.MustCompile(`(?m)^kafka_controller_kafkacontroller_globalpartitioncount (\d+)$`).FindStringSubmatch(metrics)
	require.NotNil(t, total)
	n, _ := strconv.Atoi(total[1])
	require.GreaterOrEqual(t, n, 10000)
	require.Contains(t, metrics, fmt.Sprintf("\ntributary_metrics_partition_series_omitted %d\n", n-2000))
}
