/*
 * router_member.c: which member of a shard a request goes to. Writes go
 * to the primary (primary_idx: the file's, until a member says primary
 * under a higher term); reads round robin over the replicas, then the
 * primary; a member that failed is skipped for ROUTER_BACKOFF_MS.
 *
 * These are functions of the shard alone (its members' atomics and the
 * time given), with no socket and no router, so that tests drive them on
 * a hand-built struct router_shard (tests/unit/router_member_test.c).
 */
#include "router_impl.h"

void
router_member_backoff(struct router_member *m, int failed, uint64_t now_ms)
{
	__atomic_store_n(&m->down_until_ms, failed ? now_ms +
	    ROUTER_BACKOFF_MS : 0, __ATOMIC_RELAXED);
}

int
router_member_down(const struct router_member *m, uint64_t now_ms)
{
	return __atomic_load_n(&m->down_until_ms, __ATOMIC_RELAXED) > now_ms;
}

/* Could a request that asked @p tried still ask member i (only if
 * connected, with @p live)? */
static int
usable(const struct router_shard *s, uint64_t tried, size_t i, int live,
    uint64_t now_ms)
{
	return !(tried >> i & 1) && !router_member_down(&s->members[i],
	    now_ms) && (!live || router_member_connected(&s->members[i]));
}

/* One pass of router_member_pick() over the usable members. */
static int
pick_pass(struct router_shard *s, int any, uint64_t tried, int live,
    uint64_t now_ms)
{
	size_t n = s->n_members;
	size_t p = (size_t) __atomic_load_n(&s->primary_idx, __ATOMIC_RELAXED);
	unsigned start;

	if (any && n > 1) {
		start = __atomic_fetch_add(&s->rr, 1, __ATOMIC_RELAXED);
		for (size_t k = 0; k < n - 1; k++) {
			/* the k-th replica: every member but the primary */
			size_t i = (p + 1 + (start + k) % (n - 1)) % n;
			if (usable(s, tried, i, live, now_ms))
				return (int) i;
		}
	}
	return usable(s, tried, p, live, now_ms) ? (int) p : -1;
}

int
router_member_pick(struct router_shard *s, int any, uint64_t tried,
    uint64_t now_ms)
{
	int i = pick_pass(s, any, tried, 1, now_ms);

	return i >= 0 ? i : pick_pass(s, any, tried, 0, now_ms);
}

int
router_member_left(const struct router_shard *s, uint64_t tried,
    uint64_t now_ms)
{
	for (size_t i = 0; i < s->n_members; i++)
		if (usable(s, tried, i, 0, now_ms))
			return 1;
	return 0;
}

int
router_shard_elect(struct router_shard *s, int *was)
{
	uint64_t best = 0;
	int who = -1;

	*was = __atomic_load_n(&s->primary_idx, __ATOMIC_RELAXED);
	for (size_t i = 0; i < s->n_members; i++) {
		uint64_t term = __atomic_load_n(&s->members[i].term,
		    __ATOMIC_RELAXED);
		if (__atomic_load_n(&s->members[i].role, __ATOMIC_RELAXED) ==
		    ROLE_PRIMARY && (who < 0 || term > best)) {
			best = term;
			who = (int) i;
		}
	}
	if (who >= 0 && who != *was)
		__atomic_store_n(&s->primary_idx, who, __ATOMIC_RELAXED);
	return who;
}
