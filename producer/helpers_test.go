package producer

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary/partitioner"
)

type (
	kmsgRequest  = kmsg.Request
	kmsgResponse = kmsg.Response
)

func partitionerManual() partitioner.Partitioner { return partitioner.Manual() }
