/* What this CPU allows the batch kernel, measured one core at a time: the rates that bound
 * prunekit/inference/kernel.c's loops (docs/benchmark.md, "What limits the batch-256
 * targets"). Build and run from the repository root:
 *
 *     cc -O3 -march=native scripts/cpu_ceilings.c -o /tmp/cpu_ceilings && /tmp/cpu_ceilings
 *
 * Vectors are 16 floats where the CPU has AVX-512, 8 otherwise, as in the kernel.
 * - fused multiply-adds on registers: the peak (12 independent accumulators);
 * - the same with one operand loaded from L1, as the CSR loop's activation rows are;
 * - vector loads from L1 alone;
 * - four multiply-adds from memory, one broadcast weight and one 32-bit row offset per non-zero:
 *   the CSR loop itself, its activation rows in L1;
 * - read, add and store 256-byte rows (a 64-image tile's accumulators of one output row) over
 *   a buffer in L1 and one in L2, as every pass over a layer's rows does.
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__)
#define REG "zmm"
#define BYTES "64"
#define VECTOR_FLOATS 16
#else
#define REG "ymm"
#define BYTES "32"
#define VECTOR_FLOATS 8
#endif
#define ROW_BYTES 256
#define ROUNDS 50000000L

static double seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* One accumulator's multiply-add: register operands, or the activation from memory at
 * offset `i` vectors past %0. Each round first broadcasts its two factors from memory, so
 * that no call between rounds can leave them denormal (which would trap to microcode). */
#define FACTORS "vbroadcastss (%0), %%" REG "12; vbroadcastss 4(%0), %%" REG "13;"
#define ON_REGISTERS(i) "vfmadd231ps %%" REG "13, %%" REG "12, %%" REG #i ";"
#define FROM_MEMORY(i) "vfmadd231ps " #i "*" BYTES "(%0), %%" REG "12, %%" REG #i ";"
#define LOAD(i) "vmovups " #i "*" BYTES "(%0), %%" REG #i ";"
/* Twelve independent accumulators keep both multiply-add units busy (latency 4, two a cycle),
 * and the sixteen registers AVX2 has hold them and the two factors. */
#define TWELVE(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11)
#define CLOBBERED "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
    "xmm9", "xmm10", "xmm11", "xmm12", "xmm13"

/* Billions of `per_round` operations a second over ROUNDS rounds of `body` (inline asm
 * reading the 4 KiB at `memory`). */
#define RATE(body, per_round, memory)                                                       \
    ({                                                                                      \
        const double start = seconds();                                                     \
        for (long round = 0; round < ROUNDS; ++round)                                       \
            __asm__ volatile(body : : "r"(memory) : CLOBBERED);                             \
        (per_round) * (double)ROUNDS / (seconds() - start) / 1e9;                           \
    })

/* The kernel's CSR loop over `count` non-zeros of one output row of a 64-image tile: each
 * non-zero's activation row found by its offset in bytes, the loop unrolled four times. */
typedef float vec __attribute__((vector_size(4 * VECTOR_FLOATS), aligned(4)));
#define LANES (64 / VECTOR_FLOATS)
static __attribute__((noinline)) void csr_row(vec *row, const uint32_t *offset,
                                               const float *weight, long count,
                                               const float *activations) {
    vec sums[2][LANES] = {{{0}}};
#pragma GCC unroll 4
    for (long position = 0; position + 1 < count; position += 2)
        for (int set = 0; set < 2; ++set) {
            const vec *source = (const vec *)((const char *)activations + offset[position + set]);
            for (int lane = 0; lane < LANES; ++lane)
                sums[set][lane] += weight[position + set] * source[lane];
        }
    for (int lane = 0; lane < LANES; ++lane) row[lane] += sums[0][lane] + sums[1][lane];
}

static double csr_nanoseconds_per_nonzero(void) {
    enum { COLUMNS = 128, COUNT = 100, REPEATS = 2000000 }; /* 32 KiB of activation rows */
    float *activations = aligned_alloc(64, COLUMNS * ROW_BYTES);
    for (int i = 0; i < COLUMNS * 64; ++i) activations[i] = 1e-3f * (float)(i % 97);
    uint32_t offset[COUNT];
    float weight[COUNT];
    srand(1);
    for (int i = 0; i < COUNT; ++i) {
        offset[i] = (uint32_t)(rand() % COLUMNS) * ROW_BYTES;
        weight[i] = 1e-3f;
    }
    vec row[LANES] = {{0}};
    const double start = seconds();
    for (int repeat = 0; repeat < REPEATS; ++repeat)
        csr_row(row, offset, weight, COUNT, activations);
    const double elapsed = seconds() - start;
    if (row[0][0] == 12345.0f) puts(""); /* keeps the result alive */
    free(activations);
    return 1e9 * elapsed / ((double)REPEATS * COUNT);
}

/* Nanoseconds to read, add to and store each 256-byte row of a `rows`-row buffer. */
static double row_update_nanoseconds(long rows) {
    float *buffer = aligned_alloc(64, (size_t)rows * ROW_BYTES);
    memset(buffer, 0, (size_t)rows * ROW_BYTES);
    const long sweeps = 200000000L / rows;
    const vec one = (vec){0} + 1e-6f;
    const double start = seconds();
    for (long sweep = 0; sweep < sweeps; ++sweep)
        for (long row = 0; row < rows; ++row) {
            vec *target = (vec *)(buffer + row * 64);
            for (int lane = 0; lane < LANES; ++lane) target[lane] += one;
            __asm__ volatile("" : : "r"(target) : "memory"); /* one sweep after another */
        }
    const double elapsed = seconds() - start;
    free(buffer);
    return 1e9 * elapsed / ((double)sweeps * rows);
}

int main(void) {
    float *memory = aligned_alloc(64, 4096);
    for (int i = 0; i < 1024; ++i) memory[i] = 1e-3f;
    printf("vector width: %d floats\n", VECTOR_FLOATS);
    printf("multiply-adds, registers:      %5.2f G vectors/s\n",
           RATE(FACTORS TWELVE(ON_REGISTERS), 12, memory));
    printf("multiply-adds, one from L1:    %5.2f G vectors/s\n",
           RATE(FACTORS TWELVE(FROM_MEMORY), 12, memory));
    printf("vector loads from L1:          %5.2f G vectors/s\n", RATE(TWELVE(LOAD), 12, memory));
    const double csr = csr_nanoseconds_per_nonzero();
    printf("CSR loop, activations in L1:   %5.2f ns per non-zero (%.2f G vectors/s)\n", csr,
           LANES / csr);
    printf("row update, 32 KiB (L1):       %5.2f ns per 256-byte row\n",
           row_update_nanoseconds(128));
    printf("row update, 256 KiB (L2):      %5.2f ns per 256-byte row\n",
           row_update_nanoseconds(1024));
    free(memory);
    return 0;
}
