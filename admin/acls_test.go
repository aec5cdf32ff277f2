package admin

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tributary/tributary"
)

func TestACLs(t *testing.T) {
	// Our broker has no ACL APIs yet (TestClusterAPIsMissingOnTributary).
	kfakeOnly(t, func(t *testing.T, e *env) {
		ctx := testCtx(t)
		alice := ACL{ResourceType: ResourceTopic, ResourceName: "orders", Pattern: PatternLiteral,
			Principal: "User:alice", Host: "*", Operation: OperationRead, Permission: PermissionAllow}
		bob := ACL{ResourceType: ResourceGroup, ResourceName: "billing-", Pattern: PatternPrefixed,
			Principal: "User:bob", Host: "*", Operation: OperationAll, Permission: PermissionDeny}
		bad := alice
		bad.Operation = OperationAny // a filter-only value

		res, err := e.a.CreateACLs(ctx, alice, bad, bob)
		require.NoError(t, err)
		require.Len(t, res, 3)
		assert.NoError(t, res[0].Err)
		assert.ErrorIs(t, res[1].Err, tributary.ErrInvalidRequest, "the bad ACL fails alone")
		assert.NoError(t, res[2].Err)

		// Read back with kadm.
		b := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
			Allow().Deny().AllowHosts().DenyHosts().Operations(kadm.OpAny)
		ref, err := e.kadm.DescribeACLs(ctx, b)
		require.NoError(t, err)
		var refN int
		for _, r := range ref {
			require.NoError(t, r.Err)
			refN += len(r.Described)
		}
		assert.Equal(t, 2, refN)

		all, err := e.a.DescribeACLs(ctx, ACLFilter{ResourceType: ResourceAny, Pattern: PatternAny, Operation: OperationAny, Permission: PermissionAny})
		require.NoError(t, err)
		assert.ElementsMatch(t, []ACL{alice, bob}, all)

		onlyBob, err := e.a.DescribeACLs(ctx, ACLFilter{ResourceType: ResourceAny, Pattern: PatternAny, Principal: "User:bob", Operation: OperationAny, Permission: PermissionAny})
		require.NoError(t, err)
		assert.Equal(t, []ACL{bob}, onlyBob)

		del, err := e.a.DeleteACLs(ctx, ACLFilter{ResourceType: ResourceTopic, Pattern: PatternAny, Operation: OperationAny, Permission: PermissionAny})
		require.NoError(t, err)
		require.NoError(t, del.FirstErr())
		require.Len(t, del[0].Deleted, 1)
		assert.Equal(t, alice, del[0].Deleted[0].ACL)

		left, err := e.a.DescribeACLs(ctx, ACLFilter{ResourceType: ResourceAny, Pattern: PatternAny, Operation: OperationAny, Permission: PermissionAny})
		require.NoError(t, err)
		assert.Equal(t, []ACL{bob}, left)
	})
}
