package group

import "sort"

// expireOffsets is Kafka's periodic offset cleanup
// (offsets.retention.check.interval.ms). Which offsets may expire depends
// on the group:
//
//   - no protocol type (offsets committed outside group management): each
//     offset offsets.retention.minutes after its commit;
//   - an Empty group: every offset, offsets.retention.minutes after the
//     group became empty (after the commit if that time is unknown);
//   - a Stable "consumer" group whose subscriptions are known: offsets of
//     topics no member consumes, offsets.retention.minutes after the commit
//     (KIP-496);
//   - any other group: none.
//
// An offset committed with an explicit retention (OffsetCommit v2-v4)
// expires at that time instead. An offset whose partition has a pending
// transactional offset does not expire. An Empty group left with no
// offsets and no open transaction is deleted.
func (c *Coordinator) expireOffsets(now int64) {
	retention := c.cfg.OffsetsRetention.Milliseconds()
	for _, id := range c.sortedGroupIDs() {
		g := c.groups[id]
		var base func(o *offset) int64
		switch {
		case g.protocolType == "":
			base = func(o *offset) int64 { return o.commitMs }
		case g.state == stateEmpty:
			base = func(o *offset) int64 {
				if g.stateSince > 0 {
					return g.stateSince
				}
				return o.commitMs
			}
		case g.state == stateStable && g.protocolType == "consumer" && g.subscribedKnown:
			base = func(o *offset) int64 { return o.commitMs }
		default:
			continue
		}
		topics := make([]string, 0, len(g.offsets))
		for t := range g.offsets {
			topics = append(topics, t)
		}
		sort.Strings(topics)
		for _, t := range topics {
			if g.isSubscribed(t) {
				continue
			}
			parts := make([]int32, 0, len(g.offsets[t]))
			for p := range g.offsets[t] {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				o := g.offsets[t][p]
				expired := now-base(o) >= retention
				if o.expireMs >= 0 {
					expired = now >= o.expireMs
				}
				if expired && !g.hasPendingTxn(t, p) {
					// An open transaction's offset for the partition
					// keeps it: Kafka expires it once that is settled.
					g.deleteOffset(t, p)
				}
			}
		}
		if g.state == stateEmpty && len(g.offsets) == 0 && len(g.pending) == 0 && len(g.txns) == 0 {
			c.deleteGroup(g)
		}
	}
}
