package group

import (
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tributary/tributary"
)

// OffsetCommit (key 8), versions 2-9 by topic name. (v10 names topics by
// ID: the caller resolves IDs to names first.)
//
// A member of a group commits with its member id and generation: an older
// generation gets ILLEGAL_GENERATION, an unknown member UNKNOWN_MEMBER_ID, a
// commit between the join and the sync (the member has seen the new
// generation but not its assignment) REBALANCE_IN_PROGRESS. During the join
// phase members may still commit for the previous generation, which is how
// an eager consumer commits before giving up its partitions.
//
// A commit with generation -1 and no member id comes from a consumer that
// assigns partitions itself (or from an admin tool); it is accepted only
// while the group has no members, and creates the group if needed (a
// "simple" group, with no protocol type).
//
// Each partition stores offset, leader epoch (v6+) and metadata, which may
// be at most offset.metadata.max.bytes long (OFFSET_METADATA_TOO_LARGE for
// that partition only). v2-v4 may ask for a retention time, which sets an
// explicit expiry.
func (c *Coordinator) OffsetCommit(now time.Time, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	ms := nowMs(now)
	c.observe(ms)
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	fillAll := func(err *tributary.Error) *kmsg.OffsetCommitResponse {
		for _, t := range req.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic, rt.TopicID = t.Topic, t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition = p.Partition
				if err != nil {
					rp.ErrorCode = err.Code
				}
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	if req.Group == "" {
		return fillAll(tributary.ErrInvalidGroupId)
	}
	g, created := c.getOrCreate(req.Group, req.Generation < 0)
	if g == nil {
		if req.Version >= 9 {
			return fillAll(tributary.ErrGroupIdNotFound)
		}
		return fillAll(tributary.ErrIllegalGeneration)
	}
	defer func() {
		if created {
			c.dropIfUnused(g)
		}
	}()
	if err := g.validateOffsetCommit(req); err != nil {
		return fillAll(err)
	}

	fillAll(nil)
	for i, t := range req.Topics {
		for j, p := range t.Partitions {
			leaderEpoch := p.LeaderEpoch
			if req.Version < 6 {
				leaderEpoch = -1 // the field does not exist before v6
			}
			o, err := c.newOffset(p.Offset, leaderEpoch, p.Metadata, ms)
			if err != nil {
				resp.Topics[i].Partitions[j].ErrorCode = err.Code
				continue
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis >= 0 {
				o.expireMs = ms + req.RetentionTimeMillis
			}
			setOffset(g.offsets, t.Topic, p.Partition, o)
			g.storeOffset(t.Topic, p.Partition, o)
		}
	}
	return resp
}

// newOffset is one partition's commit as stored, or
// OFFSET_METADATA_TOO_LARGE when its metadata passes
// offset.metadata.max.bytes.
func (c *Coordinator) newOffset(off int64, leaderEpoch int32, metadata *string, ms int64) (*offset, *tributary.Error) {
	md := ""
	if metadata != nil {
		md = *metadata
	}
	if len(md) > c.cfg.OffsetMetadataMaxBytes {
		return nil, tributary.ErrOffsetMetadataTooLarge
	}
	return &offset{offset: off, leaderEpoch: leaderEpoch, metadata: md, commitMs: ms, expireMs: -1}, nil
}

func (g *group) validateOffsetCommit(req *kmsg.OffsetCommitRequest) *tributary.Error {
	return g.validateCommit(req.Generation, req.MemberID, req.InstanceID, false)
}

// validateCommit is Kafka's check of an OffsetCommit or (transactional) a
// TxnOffsetCommit against the group's membership.
func (g *group) validateCommit(generation int32, memberID string, instanceID *string, transactional bool) *tributary.Error {
	if generation < 0 && g.state == stateEmpty {
		return nil // a simple commit, or an admin resetting an idle group
	}
	if generation >= 0 || memberID != "" || instanceID != nil {
		if err := g.validateMember(memberID, instanceID); err != nil {
			return err
		}
		if generation != g.generation {
			return tributary.ErrIllegalGeneration
		}
	} else if !transactional {
		// Not a member, and the group has members: the commit would race
		// with theirs. TxnOffsetCommit before v3 carries no member
		// identity at all, so Kafka lets it through.
		return tributary.ErrUnknownMemberId
	}
	if g.state == stateCompletingRebalance && !transactional {
		// The member knows the new generation from its JoinGroup answer
		// but not its assignment yet: have it sync first. Kafka does not
		// enforce the group state for transactional commits.
		return tributary.ErrRebalanceInProgress
	}
	return nil
}
