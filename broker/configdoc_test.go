package broker

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var updateConfigDoc = flag.Bool("update-config-doc", false, "rewrite CONFIG.md from the config tables")

func configTypeName(t kmsg.ConfigType) string {
	return map[kmsg.ConfigType]string{
		kmsg.ConfigTypeBoolean: "boolean", kmsg.ConfigTypeString: "string", kmsg.ConfigTypeInt: "int",
		kmsg.ConfigTypeShort: "short", kmsg.ConfigTypeLong: "long", kmsg.ConfigTypeDouble: "double",
		kmsg.ConfigTypeList: "list",
	}[t]
}

// configDoc renders CONFIG.md from brokerProps and topicProps, so the
// document cannot drift from what Set and DescribeConfigs accept.
func configDoc() string {
	var b strings.Builder
	def := DefaultConfig()
	b.WriteString("# Tributary broker configuration\n\n")
	b.WriteString("Generated from `broker/configs.go` by `go test ./broker -run TestConfigDoc -update-config-doc`; do not edit by hand.\n\n")
	b.WriteString("## Broker properties\n\n")
	b.WriteString("Set them in a `server.properties` file (`tributary broker --config FILE`), with `--override key=value`, ")
	b.WriteString("or in `broker.Config` from Go. Unknown properties are logged and ignored, as Kafka does. ")
	b.WriteString("`log.retention.hours`, `log.retention.minutes`, `log.roll.hours`, `log.roll.jitter.hours` and `log.dir` are accepted too; ")
	b.WriteString("the `.ms` spelling wins over `.minutes`, which wins over `.hours`. ")
	b.WriteString("*Dynamic* ones can be changed at runtime with IncrementalAlterConfigs/AlterConfigs on the BROKER resource ")
	b.WriteString("(this node's id, or `\"\"` for the cluster-wide default); they are persisted and apply at once to topics without an override.\n\n")
	b.WriteString("| property | type | default | dynamic | description |\n|---|---|---|---|---|\n")
	for _, p := range brokerProps {
		dyn := ""
		if p.dynamic {
			dyn = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", p.name, configTypeName(p.spec.typ), p.get(&def), dyn, p.doc)
	}
	b.WriteString("\n## Topic configs\n\n")
	b.WriteString("Set per topic with CreateTopics, AlterConfigs or IncrementalAlterConfigs (SET, DELETE, and APPEND/SUBTRACT for lists). ")
	b.WriteString("Without an override a topic config takes the value of its broker property.\n\n")
	b.WriteString("| config | type | broker property (default from) | default | description |\n|---|---|---|---|---|\n")
	for _, p := range topicProps {
		syn, dv := "", p.def
		if len(p.synonyms) > 0 {
			syn = "`" + p.synonyms[0] + "`"
			dv, _ = def.Get(p.synonyms[0])
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", p.name, configTypeName(p.spec.typ), syn, dv, p.doc)
	}
	return b.String()
}

func TestConfigDoc(t *testing.T) {
	want := configDoc()
	if *updateConfigDoc {
		if err := os.WriteFile("CONFIG.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile("CONFIG.md")
	if err != nil || string(got) != want {
		t.Fatalf("CONFIG.md is out of date: run go test ./broker -run TestConfigDoc -update-config-doc")
	}
}
