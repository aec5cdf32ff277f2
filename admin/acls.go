package admin

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ResourceType is what an ACL protects.
type ResourceType int8

// The ACL resource types Kafka defines.
const (
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4 // name "kafka-cluster"
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

func (r ResourceType) String() string { return kmsg.ACLResourceType(r).String() }

// PatternType says how an ACL's resource name matches resources.
type PatternType int8

// The ACL pattern types Kafka defines.
const (
	PatternAny      PatternType = 1 // filters only: any pattern type
	PatternMatch    PatternType = 2 // filters only: ACLs that would apply to the name
	PatternLiteral  PatternType = 3 // the name exactly ("*" for every resource)
	PatternPrefixed PatternType = 4 // every resource whose name starts with it
)

func (p PatternType) String() string { return kmsg.ACLResourcePatternType(p).String() }

// Operation is what an ACL allows or denies.
type Operation int8

// The ACL operations Kafka defines.
const (
	OperationAny             Operation = 1 // filters only
	OperationAll             Operation = 2
	OperationRead            Operation = 3
	OperationWrite           Operation = 4
	OperationCreate          Operation = 5
	OperationDelete          Operation = 6
	OperationAlter           Operation = 7
	OperationDescribe        Operation = 8
	OperationClusterAction   Operation = 9
	OperationDescribeConfigs Operation = 10
	OperationAlterConfigs    Operation = 11
	OperationIdempotentWrite Operation = 12
	OperationCreateTokens    Operation = 13
	OperationDescribeTokens  Operation = 14
)

func (o Operation) String() string { return kmsg.ACLOperation(o).String() }

// Permission is whether an ACL allows or denies.
type Permission int8

// The ACL permission types Kafka defines.
const (
	PermissionAny   Permission = 1 // filters only
	PermissionDeny  Permission = 2
	PermissionAllow Permission = 3
)

func (p Permission) String() string { return kmsg.ACLPermissionType(p).String() }

// ACL is one access control entry: Principal (e.g. "User:alice") from Host
// ("*" for any) may (PermissionAllow) or may not (PermissionDeny) do
// Operation on the resources ResourceType/ResourceName/Pattern match.
type ACL struct {
	ResourceType ResourceType
	ResourceName string
	Pattern      PatternType
	Principal    string
	Host         string
	Operation    Operation
	Permission   Permission
}

// ACLFilter selects ACLs. Empty strings match anything, as do the *Any
// enum values; PatternMatch selects the ACLs that apply to ResourceName.
type ACLFilter ACL

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// ACLResult is the outcome for one ACL of CreateACLs.
type ACLResult struct {
	ACL ACL
	Err error
}

// ACLResults are CreateACLs' results in request order.
type ACLResults []ACLResult

// FirstErr returns the first failed ACL's error, naming it, or nil.
func (rs ACLResults) FirstErr() error {
	return firstErr(rs, func(r ACLResult) (string, error) {
		return fmt.Sprintf("%s %s %s on %s %q", r.ACL.Principal, r.ACL.Permission, r.ACL.Operation, r.ACL.ResourceType, r.ACL.ResourceName), r.Err
	})
}

// CreateACLs creates ACLs; each succeeds or fails alone (e.g. one using a
// filter-only value such as OperationAny fails with
// tributary.ErrInvalidRequest).
func (a *Client) CreateACLs(ctx context.Context, acls ...ACL) (ACLResults, error) {
	if len(acls) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, acl := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType = kmsg.ACLResourceType(acl.ResourceType)
		c.ResourceName = acl.ResourceName
		c.ResourcePatternType = kmsg.ACLResourcePatternType(acl.Pattern)
		c.Principal = acl.Principal
		c.Host = acl.Host
		c.Operation = kmsg.ACLOperation(acl.Operation)
		c.PermissionType = kmsg.ACLPermissionType(acl.Permission)
		req.Creations = append(req.Creations, c)
	}
	raw, err := a.cl.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("admin: create acls: %w", err)
	}
	resp := raw.(*kmsg.CreateACLsResponse)
	out := make(ACLResults, len(acls))
	for i, acl := range acls {
		out[i] = ACLResult{ACL: acl, Err: ErrNoResponse}
		if i < len(resp.Results) { // answered in request order
			out[i].Err = kafkaErr(resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage)
		}
	}
	return out, nil
}

// DescribeACLs returns the ACLs filter selects. Request-level failures
// (e.g. tributary.ErrSecurityDisabled) are returned as the error.
func (a *Client) DescribeACLs(ctx context.Context, filter ACLFilter) ([]ACL, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType = kmsg.ACLResourceType(filter.ResourceType)
	req.ResourceName = nilIfEmpty(filter.ResourceName)
	req.ResourcePatternType = kmsg.ACLResourcePatternType(filter.Pattern)
	req.Principal = nilIfEmpty(filter.Principal)
	req.Host = nilIfEmpty(filter.Host)
	req.Operation = kmsg.ACLOperation(filter.Operation)
	req.PermissionType = kmsg.ACLPermissionType(filter.Permission)
	raw, err := a.cl.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("admin: describe acls: %w", err)
	}
	resp := raw.(*kmsg.DescribeACLsResponse)
	if resp.ErrorCode != 0 {
		return nil, fmt.Errorf("admin: describe acls: %w", kafkaErr(resp.ErrorCode, resp.ErrorMessage))
	}
	var out []ACL
	for _, r := range resp.Resources {
		for _, acl := range r.ACLs {
			out = append(out, ACL{
				ResourceType: ResourceType(r.ResourceType), ResourceName: r.ResourceName,
				Pattern: PatternType(r.ResourcePatternType), Principal: acl.Principal, Host: acl.Host,
				Operation: Operation(acl.Operation), Permission: Permission(acl.PermissionType),
			})
		}
	}
	return out, nil
}

// DeletedACLs is the outcome for one filter of DeleteACLs: the ACLs it
// matched and deleted (each with its own error), or the filter's error.
type DeletedACLs struct {
	Filter  ACLFilter
	Deleted []ACLResult
	Err     error
}

// DeletedACLsList are DeleteACLs' results in request order.
type DeletedACLsList []DeletedACLs

// FirstErr returns the first error of a filter or of one of its ACLs.
func (ds DeletedACLsList) FirstErr() error {
	for _, d := range ds {
		if d.Err != nil {
			return d.Err
		}
		if err := ACLResults(d.Deleted).FirstErr(); err != nil {
			return err
		}
	}
	return nil
}

// DeleteACLs deletes every ACL each filter selects.
func (a *Client) DeleteACLs(ctx context.Context, filters ...ACLFilter) (DeletedACLsList, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, f := range filters {
		rf := kmsg.NewDeleteACLsRequestFilter()
		rf.ResourceType = kmsg.ACLResourceType(f.ResourceType)
		rf.ResourceName = nilIfEmpty(f.ResourceName)
		rf.ResourcePatternType = kmsg.ACLResourcePatternType(f.Pattern)
		rf.Principal = nilIfEmpty(f.Principal)
		rf.Host = nilIfEmpty(f.Host)
		rf.Operation = kmsg.ACLOperation(f.Operation)
		rf.PermissionType = kmsg.ACLPermissionType(f.Permission)
		req.Filters = append(req.Filters, rf)
	}
	raw, err := a.cl.Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("admin: delete acls: %w", err)
	}
	resp := raw.(*kmsg.DeleteACLsResponse)
	out := make(DeletedACLsList, len(filters))
	for i, f := range filters {
		out[i] = DeletedACLs{Filter: f, Err: ErrNoResponse}
		if i >= len(resp.Results) { // answered in request order
			continue
		}
		r := resp.Results[i]
		out[i].Err = kafkaErr(r.ErrorCode, r.ErrorMessage)
		for _, m := range r.MatchingACLs {
			out[i].Deleted = append(out[i].Deleted, ACLResult{
				ACL: ACL{
					ResourceType: ResourceType(m.ResourceType), ResourceName: m.ResourceName,
					Pattern: PatternType(m.ResourcePatternType), Principal: m.Principal, Host: m.Host,
					Operation: Operation(m.Operation), Permission: Permission(m.PermissionType),
				},
				Err: kafkaErr(m.ErrorCode, m.ErrorMessage),
			})
		}
	}
	return out, nil
}
