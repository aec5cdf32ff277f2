package broker_test

import (
	"os"
	"testing"
)

// TestMain lets the test binary double as the exactly-once pipeline that
// TestTxnChaosPipeline runs as a separate process (so that it can be
// killed with SIGKILL like the brokers): with TRIBUTARY_TXN_PIPELINE set
// it runs the pipeline until killed instead of the tests.
func TestMain(m *testing.M) {
	if os.Getenv(pipelineEnv) != "" {
		os.Exit(runPipeline())
	}
	os.Exit(m.Run())
}
