package broker

import (
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzSeedRequests are valid requests of several keys and versions,
// flexible and not, that seed FuzzRequestDecode.
func fuzzSeedRequests() []kmsg.Request {
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("a")}}
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "t", 3, 1
	ctt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1")}}
	ct.Topics = append(ct.Topics, ctt)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: 2, ResourceName: "t"}}
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: 2, ResourceName: "t",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "cleanup.policy", Op: 2, Value: kmsg.StringPtr("compact")}}}}
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks = -1
	pr.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: 0, Records: []byte{1, 2, 3}}}}}
	fe := kmsg.NewPtrFetchRequest()
	fe.Topics = []kmsg.FetchRequestTopic{{Topic: "t", Partitions: []kmsg.FetchRequestTopicPartition{{Partition: 0, PartitionMaxBytes: 1 << 20}}}}
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1"
	return []kmsg.Request{md, ct, dc, iac, pr, fe, av,
		kmsg.NewPtrDeleteTopicsRequest(), kmsg.NewPtrCreatePartitionsRequest(), kmsg.NewPtrAlterConfigsRequest(),
		kmsg.NewPtrDescribeClusterRequest(), kmsg.NewPtrListOffsetsRequest(), kmsg.NewPtrInitProducerIDRequest()}
}

// FuzzRequestDecode feeds decodeFrame, the connection's decode path, with
// (key, version, rest-of-frame) and checks it never panics, never accepts
// a key or version outside the handler table (ApiVersions excepted), and
// that whatever it accepts re-encodes.
//
//	go test ./broker -run '^$' -fuzz FuzzRequestDecode -fuzztime 60s
func FuzzRequestDecode(f *testing.F) {
	for _, req := range fuzzSeedRequests() {
		a, ok := apis[req.Key()]
		if !ok {
			continue
		}
		for _, v := range []int16{a.min, (a.min + a.max) / 2, a.max} {
			req.SetVersion(v)
			var rest []byte
			rest = binary.BigEndian.AppendUint32(rest, 42)
			rest = binary.BigEndian.AppendUint16(rest, 4)
			rest = append(rest, "fuzz"...)
			if req.IsFlexible() {
				rest = append(rest, 0)
			}
			rest = req.AppendTo(rest)
			f.Add(req.Key(), v, rest)
		}
	}
	f.Fuzz(func(t *testing.T, key, version int16, rest []byte) {
		frame := binary.BigEndian.AppendUint16(nil, uint16(key))
		frame = binary.BigEndian.AppendUint16(frame, uint16(version))
		frame = append(frame, rest...)
		req, err := decodeFrame(frame)
		if err != nil {
			return
		}
		a, ok := apis[key]
		if !ok {
			t.Fatalf("accepted unknown key %d", key)
		}
		if (version < a.min || version > a.max) && !(key == 18 && version > a.max) {
			t.Fatalf("accepted key %d version %d outside %d-%d", key, version, a.min, a.max)
		}
		if req.key != key || req.version != version {
			t.Fatalf("header mismatch")
		}
		_ = req.msg.AppendTo(nil)
	})
}

// FuzzAdminHandlers decodes like FuzzRequestDecode and then runs the
// decoded request through its handler on a real broker, for the admin
// APIs of this package, and encodes the response at the request's
// version: no input may panic a handler or produce an unencodable
// response. Creations are forced to validate_only so the corpus does not
// fill the disk.
//
//	go test ./broker -run '^$' -fuzz FuzzAdminHandlers -fuzztime 60s
func FuzzAdminHandlers(f *testing.F) {
	admin := map[int16]bool{3: true, 18: true, 19: true, 20: true, 32: true, 33: true, 37: true, 44: true, 60: true}
	for _, req := range fuzzSeedRequests() {
		a, ok := apis[req.Key()]
		if !ok || !admin[req.Key()] {
			continue
		}
		for _, v := range []int16{a.min, a.max} {
			req.SetVersion(v)
			f.Add(req.Key(), v, req.AppendTo(nil))
		}
	}
	cfg := DefaultConfig()
	cfg.LogDirs = []string{f.TempDir()}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.AutoCreateTopicsEnable = false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	cfg.Listener = ln
	cfg.HTTPListener = "" // no console: 9644 may be taken by another test
	b, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { b.Close() })
	runErr := make(chan error, 1)
	go func() { runErr <- b.Run(context.Background()) }()
	select {
	case <-b.Ready():
	case err := <-runErr:
		f.Fatalf("broker stopped before serving: %v", err)
	}
	if err := b.createTopic("t", 3, 1, nil); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		if !admin[key] {
			return
		}
		a := apis[key]
		if version < a.min || version > a.max {
			return
		}
		msg := kmsg.RequestForKey(key)
		msg.SetVersion(version)
		if msg.ReadFrom(body) != nil {
			return
		}
		switch r := msg.(type) {
		case *kmsg.CreateTopicsRequest:
			r.ValidateOnly = true
		case *kmsg.CreatePartitionsRequest:
			r.ValidateOnly = true
		case *kmsg.AlterConfigsRequest:
			r.ValidateOnly = true
		case *kmsg.IncrementalAlterConfigsRequest:
			r.ValidateOnly = true
		case *kmsg.DeleteTopicsRequest:
			return // would delete the fixture
		}
		resp, err := a.fn(b, &request{key: key, version: version, msg: msg})
		if err != nil {
			return
		}
		if kr, ok := resp.(kmsg.Response); ok {
			_ = appendResponse(nil, 1, kr)
		}
	})
}
