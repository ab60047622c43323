/* The provider, statically linked into the bench (lttng-ust(3), "static
 * linking"), and the three functions the Rust side calls. */
#define TRACEPOINT_CREATE_PROBES
#define TRACEPOINT_DEFINE
#include "ringtrace_bench_tp.h"

#include <stddef.h>

void ringtrace_bench_lttng_u64(uint64_t v)
{
	tracepoint(ringtrace_bench, u64_event, v);
}

void ringtrace_bench_lttng_bytes(const uint8_t *p, size_t len)
{
	switch (len) {
	case 8:
		tracepoint(ringtrace_bench, bytes8, p);
		break;
	case 32:
		tracepoint(ringtrace_bench, bytes32, p);
		break;
	case 128:
		tracepoint(ringtrace_bench, bytes128, p);
		break;
	default:
		break;
	}
}

/* Non-zero once a session enabled our events in this process. */
int ringtrace_bench_lttng_enabled(void)
{
	return tracepoint_enabled(ringtrace_bench, u64_event) &&
	       tracepoint_enabled(ringtrace_bench, bytes8) &&
	       tracepoint_enabled(ringtrace_bench, bytes32) &&
	       tracepoint_enabled(ringtrace_bench, bytes128);
}
