// Command hooks-prometheus exports the SDK's client metrics to Prometheus
// through client hooks, without wrapping the SDK: it produces records and
// serves the metrics on /metrics.
//
//	go run ./examples/hooks-prometheus -brokers 127.0.0.1:9092 -topic orders -n 1000 -listen :2112
//	curl -s localhost:2112/metrics | grep tributary_
//
// With -listen empty it prints the metrics once and exits. -brokers
// defaults to $TRIBUTARY_BROKERS, as the tributary CLI does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary/tributary"
	"github.com/tributary/tributary/client"
	"github.com/tributary/tributary/producer"
)

func main() {
	def := os.Getenv("TRIBUTARY_BROKERS")
	if def == "" {
		def = "127.0.0.1:9092"
	}
	brokers := flag.String("brokers", def, "comma-separated seed brokers (default $TRIBUTARY_BROKERS)")
	topic := flag.String("topic", "tributary-metrics", "topic to produce to")
	n := flag.Int("n", 1000, "number of records")
	listen := flag.String("listen", "", "serve /metrics here (e.g. :2112); empty prints them and exits")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	reg := prometheus.NewRegistry()
	if err := run(ctx, os.Stdout, reg, strings.Split(*brokers, ","), *topic, *n); err != nil {
		log.Fatal(err)
	}
	if *listen == "" {
		if err := printMetrics(os.Stdout, reg); err != nil {
			log.Fatal(err)
		}
		return
	}
	srv := &http.Server{Addr: *listen, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	log.Printf("serving metrics on %s/metrics; Ctrl-C to stop", *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// run produces n records to topic with a producer whose client reports to
// a Metrics registered with reg.
func run(ctx context.Context, out io.Writer, reg prometheus.Registerer, brokers []string, topic string, n int) error {
	m := NewMetrics()
	if err := reg.Register(m); err != nil {
		return err
	}
	p, err := producer.New(
		producer.SeedBrokers(brokers...),
		producer.ClientOptions(client.WithHooks(m)),
	)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(cctx)
	}()
	recs := make([]*tributary.Record, n)
	for i := range recs {
		recs[i] = &tributary.Record{Topic: topic, Value: fmt.Appendf(nil, "record-%d", i)}
	}
	if err := p.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	fmt.Fprintf(out, "produced %d records to %s\n", n, topic)
	return nil
}

// printMetrics writes the tributary_* series in a compact text form.
func printMetrics(out io.Writer, g prometheus.Gatherer) error {
	mfs, err := g.Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			switch {
			case m.Counter != nil:
				fmt.Fprintf(out, "%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), m.Counter.GetValue())
			case m.Histogram != nil:
				fmt.Fprintf(out, "%s{%s} count=%d sum=%gs\n", mf.GetName(), strings.Join(labels, ","), m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum())
			}
		}
	}
	return nil
}
