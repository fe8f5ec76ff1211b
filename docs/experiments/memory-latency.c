/* How long a read of a random cache line takes on this machine, as a
 * function of the memory read from: one read waiting on the one before
 * (a chain, as a look-up that needs its index's answer first) and reads
 * that do not wait on each other. Backs the floor argument in
 * docs/PERFORMANCE.md ("Items 1 and 2: why they stay missed").
 *
 *   gcc -O2 -o /tmp/latency docs/experiments/memory-latency.c
 *   for mb in 1 8 24 240 2400; do /tmp/latency $mb; done
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MEGABYTES\n", argv[0]);
        return 2;
    }
    size_t lines = (size_t)atol(argv[1]) * 1024 * 1024 / 64;
    size_t huge = 2u << 20, bytes = (lines * 64 + huge - 1) / huge * huge;
    uint64_t *memory = aligned_alloc(huge, bytes), *order = malloc(lines * 8);
    if (lines < 2 || !memory || !order) {
        fprintf(stderr, "cannot allocate\n");
        return 1;
    }
    madvise(memory, bytes, MADV_HUGEPAGE); /* as `sim` runs */
    for (size_t i = 0; i < lines; i++) order[i] = i;
    uint64_t x = 88172645463325252ull;
    for (size_t i = lines - 1; i > 0; i--) { /* xorshift, Fisher-Yates */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t j = x % (i + 1), t = order[i];
        order[i] = order[j], order[j] = t;
    }
    /* One random cycle through every line: each read says where the next is. */
    for (size_t i = 0; i < lines; i++) memory[order[i] * 8] = order[(i + 1) % lines];
    const size_t reads = 20000000;
    uint64_t at = order[0], sum = 0;
    double t0 = cpu_seconds();
    for (size_t i = 0; i < reads; i++) at = memory[at * 8];
    double t1 = cpu_seconds();
    for (size_t i = 0; i < reads; i++) sum += memory[order[i % lines] * 8];
    double t2 = cpu_seconds();
    printf("%s MB: %.1f ns a read in a chain, %.1f ns a read on its own (%llu)\n", argv[1],
           (t1 - t0) / reads * 1e9, (t2 - t1) / reads * 1e9, (unsigned long long)(at ^ sum));
    return 0;
}
