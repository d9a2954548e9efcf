/*
 * jemalloc_conf.c - jemalloc's start-up options for changetrail's two
 * programs (linked into them only when they allocate with jemalloc; the
 * library leaves applications' allocators alone). MALLOC_CONF in the
 * environment still overrides any of them.
 *
 * Why: with jemalloc's defaults the consumer's peak RSS was well above what
 * it holds. Its threads (the loop, two stages, librdkafka's, libmongoc's)
 * spread over 4 arenas per CPU, and freed pages stay resident for 10 s.
 * Two arenas and a 1 s decay took a 200000-event run with 20000 documents
 * from 422 to 251-259 MB peak RSS at the same CPU per event, while stage 1
 * still built whole batches before recording them. Since events are
 * recorded as they are parsed, the gain is small: 228-236 against 236-241
 * MB, for ~3% more CPU (tests/bench/nowrite_cpu.py --events 200000, runs
 * alternating with MALLOC_CONF=narenas:8,dirty_decay_ms:10000;
 * docs/performance.md).
 */
const char *malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
