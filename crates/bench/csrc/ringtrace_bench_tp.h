/* LTTng-UST tracepoint provider of ringtrace's benchmark suite: one event
 * with a u64 field (as the `tracing` comparison) and events with a byte
 * array of 8, 32 and 128 bytes (as the record writers). LTTng adds its own
 * header and time stamp (a clock read per event). */
#undef TRACEPOINT_PROVIDER
#define TRACEPOINT_PROVIDER ringtrace_bench

#undef TRACEPOINT_INCLUDE
#define TRACEPOINT_INCLUDE "./ringtrace_bench_tp.h"

#if !defined(RINGTRACE_BENCH_TP_H) || defined(TRACEPOINT_HEADER_MULTI_READ)
#define RINGTRACE_BENCH_TP_H

#include <lttng/tracepoint.h>
#include <stdint.h>

TRACEPOINT_EVENT(ringtrace_bench, u64_event,
    TP_ARGS(uint64_t, v),
    TP_FIELDS(ctf_integer(uint64_t, v, v)))

TRACEPOINT_EVENT(ringtrace_bench, bytes8,
    TP_ARGS(const uint8_t *, p),
    TP_FIELDS(ctf_array(uint8_t, data, p, 8)))

TRACEPOINT_EVENT(ringtrace_bench, bytes32,
    TP_ARGS(const uint8_t *, p),
    TP_FIELDS(ctf_array(uint8_t, data, p, 32)))

TRACEPOINT_EVENT(ringtrace_bench, bytes128,
    TP_ARGS(const uint8_t *, p),
    TP_FIELDS(ctf_array(uint8_t, data, p, 128)))

#endif

#include <lttng/tracepoint-event.h>
