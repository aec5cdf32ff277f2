package broker_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary/tributary/broker/brokertest"
)

// The cluster-management APIs on one node answer as Kafka does when there
// is nothing to move: elections are not needed, the only replica set is
// complete at once, no reassignment is ever pending, and without an
// authorizer the ACL APIs say SECURITY_DISABLED.
func TestElectionsReassignmentsAndACLsOnOneNode(t *testing.T) {
	b := brokertest.Start(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = adm.CreateTopic(ctx, 2, 1, nil, "moves")
	require.NoError(t, err)

	el, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"moves": {0: {}, 1: {}}, "missing": {0: {}}})
	require.NoError(t, err)
	require.ErrorIs(t, el["moves"][0].Err, kerr.ElectionNotNeeded)
	require.ErrorIs(t, el["moves"][1].Err, kerr.ElectionNotNeeded)
	require.ErrorIs(t, el["missing"][0].Err, kerr.UnknownTopicOrPartition)
	all, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	require.NoError(t, err)
	require.Empty(t, all, "an election over every partition lists only those it changed")

	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moves", 0, []int32{1})    // where it already is: done at once
	req.Assign("moves", 1, []int32{1, 2}) // broker 2 does not exist
	req.Assign("missing", 0, []int32{1})
	req.CancelAssign("moves", 1) // overrides the line above: nothing to cancel
	res, err := adm.AlterPartitionAssignments(ctx, req)
	require.NoError(t, err)
	require.NoError(t, res["moves"][0].Err)
	require.ErrorIs(t, res["moves"][1].Err, kerr.NoReassignmentInProgress)
	require.ErrorIs(t, res["missing"][0].Err, kerr.UnknownTopicOrPartition)

	var bad kadm.AlterPartitionAssignmentsReq
	bad.Assign("moves", 1, []int32{1, 2})
	bad.Assign("moves", 0, []int32{7})
	res, err = adm.AlterPartitionAssignments(ctx, bad)
	require.NoError(t, err)
	require.ErrorIs(t, res["moves"][1].Err, kerr.InvalidReplicaAssignment)
	require.ErrorIs(t, res["moves"][0].Err, kerr.InvalidReplicaAssignment)

	pending, err := adm.ListPartitionReassignments(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, pending)

	acls := kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("moves").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	described, err := adm.DescribeACLs(ctx, acls)
	require.NoError(t, err)
	require.NotEmpty(t, described)
	for _, d := range described {
		require.ErrorIs(t, d.Err, kerr.SecurityDisabled)
	}
	created, err := adm.CreateACLs(ctx, acls)
	require.NoError(t, err)
	require.NotEmpty(t, created)
	for _, c := range created {
		require.ErrorIs(t, c.Err, kerr.SecurityDisabled)
	}
}
