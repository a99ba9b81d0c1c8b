/* Whole-network forward passes of a ReLU MLP without biases, built by
 * prunekit/inference/kernel.py on first use (cc -O3 -march=native -pthread) and called
 * through ctypes. The last layer gets no ReLU. Inputs are the images' full rows; the pixels
 * the first matrix reads are gathered (one image) or transposed (a batch) here rather than by
 * a copy before the call.
 *
 * forward_vector runs one image: every layer's rows are split between the calling thread and
 * pool workers, each layer stored in the format that reads it fastest (rows, columns that
 * skip zero activations, or dense). forward_batch runs a batch in tiles of 64 images with the
 * images innermost, each block of a matrix's columns in CSR or, where it is dense enough,
 * densely, in 16-float vectors where the CPU has AVX-512 and 8-float ones otherwise. Both
 * share one pool of worker threads.
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TILE 64 /* images per tile of forward_batch */
#if defined(__AVX512F__)
#define VECTOR_FLOATS 16
#else
#define VECTOR_FLOATS 8
#endif
#define LANES (TILE / VECTOR_FLOATS) /* vectors of accumulators per output row */
/* Independent sets of accumulators per row, each taking every SETS-th non-zero, so that 8
 * fused multiply-adds are in flight (their latency is 4 cycles, 2 issue per cycle). */
#define SETS (8 / LANES)

typedef float vec8 __attribute__((vector_size(32), aligned(4)));
typedef float vec __attribute__((vector_size(4 * VECTOR_FLOATS), aligned(4)));
typedef int32_t mask __attribute__((vector_size(4 * VECTOR_FLOATS), aligned(4)));

#define RELU(a) ((a) = (vec)((mask)(a) & ((a) > zero)))

/* Adds to a row's TILE accumulators each non-zero weight times its activation row, which
 * starts `offset` bytes into `activations` (its column times TILE floats: an address with no
 * shift to compute). Inlined, with constant loop bounds, so that the accumulators and
 * pointers stay in registers; the loop is unrolled four times, so that its own count and
 * branch cost less per non-zero. */
static inline __attribute__((always_inline)) void add_row(
        vec *restrict row, const uint32_t *restrict offset, const uint32_t *end,
        const float *restrict weight, const float *restrict activations) {
    vec sums[SETS][LANES];
    for (int lane = 0; lane < LANES; ++lane) sums[0][lane] = row[lane];
    for (int set = 1; set < SETS; ++set)
        for (int lane = 0; lane < LANES; ++lane) sums[set][lane] = (vec){0};
#pragma GCC unroll 4
    for (; end - offset >= SETS; offset += SETS, weight += SETS)
        for (int set = 0; set < SETS; ++set) {
            const vec *source = (const vec *)((const char *)activations + offset[set]);
            for (int lane = 0; lane < LANES; ++lane) sums[set][lane] += weight[set] * source[lane];
        }
    for (; offset < end; ++offset, ++weight) {
        const vec *source = (const vec *)((const char *)activations + *offset);
        for (int lane = 0; lane < LANES; ++lane) sums[0][lane] += *weight * source[lane];
    }
    for (int set = 1; set < SETS; ++set)
        for (int lane = 0; lane < LANES; ++lane) sums[0][lane] += sums[set][lane];
    for (int lane = 0; lane < LANES; ++lane) row[lane] = sums[0][lane];
}

#if defined(__AVX512F__)
/* Transposes a 16 x 16 block in registers: rows[i] holds row i on entry, column i on return. */
static inline __attribute__((always_inline)) void transpose16(__m512 rows[16]) {
    __m512 mixed[16];
    for (int i = 0; i < 8; ++i) { /* pairs of rows interleaved float by float */
        mixed[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        mixed[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) { /* then fours of rows, two floats at a time */
        const __m512d a = _mm512_castps_pd(mixed[4 * i]), b = _mm512_castps_pd(mixed[4 * i + 1]);
        const __m512d c = _mm512_castps_pd(mixed[4 * i + 2]);
        const __m512d d = _mm512_castps_pd(mixed[4 * i + 3]);
        rows[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        rows[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        rows[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        rows[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 2; ++i) /* then eights, four floats (a 128-bit lane) at a time */
        for (int j = 0; j < 4; ++j) {
            mixed[8 * i + j] = _mm512_shuffle_f32x4(rows[8 * i + j], rows[8 * i + 4 + j], 0x88);
            mixed[8 * i + 4 + j] = _mm512_shuffle_f32x4(rows[8 * i + j], rows[8 * i + 4 + j],
                                                        0xdd);
        }
    for (int j = 0; j < 8; ++j) { /* and all sixteen */
        rows[j] = _mm512_shuffle_f32x4(mixed[j], mixed[8 + j], 0x88);
        rows[8 + j] = _mm512_shuffle_f32x4(mixed[j], mixed[8 + j], 0xdd);
    }
}

/* Copies a block of 16 images (rows `image_width` apart from `first`) by 16 pixels, of which
 * the first `present` exist, into 16 activation rows (TILE apart from `target`). */
static inline void transpose_block(const float *first, int64_t image_width, int64_t present,
                                   float *target) {
    const __mmask16 mask = present >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << present) - 1);
    __m512 rows[16];
    for (int image = 0; image < 16; ++image)
        rows[image] = _mm512_maskz_loadu_ps(mask, first + image * image_width);
    transpose16(rows);
    for (int column = 0; column < 16; ++column)
        _mm512_store_ps(target + column * TILE, rows[column]);
}
#elif defined(__AVX2__)
/* Transposes an 8 x 8 block in registers: rows[i] holds row i on entry, column i on return. */
static inline __attribute__((always_inline)) void transpose8(__m256 rows[8]) {
    __m256 mixed[8], fours[8];
    for (int i = 0; i < 4; ++i) { /* pairs of rows interleaved float by float */
        mixed[2 * i] = _mm256_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
        mixed[2 * i + 1] = _mm256_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) { /* then fours of rows, two floats at a time */
        fours[4 * i] = _mm256_shuffle_ps(mixed[4 * i], mixed[4 * i + 2], 0x44);
        fours[4 * i + 1] = _mm256_shuffle_ps(mixed[4 * i], mixed[4 * i + 2], 0xee);
        fours[4 * i + 2] = _mm256_shuffle_ps(mixed[4 * i + 1], mixed[4 * i + 3], 0x44);
        fours[4 * i + 3] = _mm256_shuffle_ps(mixed[4 * i + 1], mixed[4 * i + 3], 0xee);
    }
    for (int j = 0; j < 4; ++j) { /* and all eight, a 128-bit lane at a time */
        rows[j] = _mm256_permute2f128_ps(fours[j], fours[4 + j], 0x20);
        rows[4 + j] = _mm256_permute2f128_ps(fours[j], fours[4 + j], 0x31);
    }
}

/* transpose_block's AVX2 form: 8 images by 8 pixels, of which the first `present` exist. */
static inline void transpose_block(const float *first, int64_t image_width, int64_t present,
                                   float *target) {
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(present < 8 ? present : 8)),
                                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 rows[8];
    for (int image = 0; image < 8; ++image)
        rows[image] = _mm256_maskload_ps(first + image * image_width, mask);
    transpose8(rows);
    for (int column = 0; column < 8; ++column)
        _mm256_store_ps(target + column * TILE, rows[column]);
}
#endif

/* Copies the first `pixels` pixels of `count` images (row-major from `first`) into (pixels,
 * TILE) activation rows, zeros past `count`. A full tile moves square blocks of a vector's
 * floats (16 images by 16 pixels with AVX-512, 8 by 8 with AVX2) through registers, so
 * `target` must hold `pixels` rounded up to 16 rows; the rows past `pixels` get the images'
 * next pixels (or zeros past their width), which no matrix reads. */
static void transpose_tile(const float *first, int64_t count, int64_t image_width,
                           int64_t pixels, float *target) {
#if defined(__AVX512F__) || defined(__AVX2__)
    if (count == TILE) {
        for (int64_t base = 0; base < TILE; base += VECTOR_FLOATS)
            for (int64_t pixel = 0; pixel < pixels; pixel += VECTOR_FLOATS)
                /* The last block of a row reads only the pixels the image has. */
                transpose_block(first + base * image_width + pixel, image_width,
                                image_width - pixel, target + pixel * TILE + base);
        return;
    }
#endif
    for (int64_t pixel = 0; pixel < pixels; ++pixel) {
        for (int64_t lane = 0; lane < count; ++lane)
            target[pixel * TILE + lane] = first[lane * image_width + pixel];
        for (int64_t lane = count; lane < TILE; ++lane) target[pixel * TILE + lane] = 0.0f;
    }
}

#define ACCUMULATE 1
#define END_OF_LAYER 2
#define APPLY_RELU 4
#define DENSE_PASS 8 /* every weight of the block, in groups of GROUP rows */
#define GROUP 6
/* Vectors of each output row a dense pass computes at a time, for all GROUP rows of a group:
 * GROUP * CHUNK accumulators, 24 of the 32 registers with AVX-512 (the whole tile, beside its
 * four activation vectors and a weight); the 16 registers of AVX2 hold 12 accumulators, 2
 * activation vectors and a weight, so its tile runs in four chunks. */
#define CHUNK (LANES <= 4 ? LANES : 2)

/* Vectors first_lane .. first_lane + CHUNK - 1 of a group's GROUP rows in a dense pass:
 * `weights` holds the group's block as (columns, GROUP), so that for each input column the
 * activation vectors are loaded once and multiplied by every row's weight. Inlined, so that
 * the accumulators stay in registers. */
static inline __attribute__((always_inline)) void dense_group(
        vec *restrict target, const float *restrict weights, int first_lane, int64_t columns,
        const float *restrict activations, int accumulate, int relu) {
    const vec zero = {0};
    vec sums[GROUP][CHUNK];
    for (int row = 0; row < GROUP; ++row)
        for (int lane = 0; lane < CHUNK; ++lane)
            sums[row][lane] = accumulate ? target[row * LANES + first_lane + lane] : zero;
    for (int64_t column = 0; column < columns; ++column) {
        const vec *source = (const vec *)(activations + column * TILE) + first_lane;
        vec inputs[CHUNK];
        for (int lane = 0; lane < CHUNK; ++lane) inputs[lane] = source[lane];
        for (int row = 0; row < GROUP; ++row) {
            const float weight = weights[column * GROUP + row];
            for (int lane = 0; lane < CHUNK; ++lane) sums[row][lane] += weight * inputs[lane];
        }
    }
    if (relu)
        for (int row = 0; row < GROUP; ++row)
            for (int lane = 0; lane < CHUNK; ++lane) RELU(sums[row][lane]);
    for (int row = 0; row < GROUP; ++row)
        for (int lane = 0; lane < CHUNK; ++lane)
            target[row * LANES + first_lane + lane] = sums[row][lane];
}

/* One thread's share of a batch: tiles first_tile .. stop_tile - 1 of the images (row-major,
 * batch x image_width), the network's passes, and work space of 2 * width * TILE floats. */
struct tile_range {
    const float *images;
    int64_t batch, image_width;
    int64_t pixels;
    const int32_t *row_pointers;
    const uint32_t *row_offsets;
    const float *values;
    const int64_t *rows, *pointer_starts, *offset_starts, *value_starts, *flags;
    int64_t passes;
    float *work;
    int64_t width, first_tile, stop_tile;
    float *logits;
};

/* Logits of one thread's tiles.
 * A tile's activations are (features, TILE) with the images innermost; an output row's 64
 * accumulators stay in vector registers while each non-zero adds its multiple of one
 * contiguous activation row. A sparse pass's rows run in the order kernel.py stores them, most
 * non-zeros first; the rows' own indices follow the pass's row pointers, and each non-zero's
 * activation row is given by its offset in bytes. A dense pass (DENSE_PASS) multiplies every
 * weight of its block, a group of GROUP rows at a time (CHUNK vectors of their images at a
 * time), each activation vector loaded once for the group; its rows are padded to a multiple
 * of GROUP, so the work space must hold that many. Each layer runs as one or more passes over
 * blocks of its input columns (flags: ACCUMULATE adds to the rows the previous pass left,
 * END_OF_LAYER makes the output the next layer's input, APPLY_RELU clamps it), so that the
 * activation rows one pass reads stay in cache (kernel.py's BLOCK_COLUMNS sets the blocks). */
static void forward_tiles(const struct tile_range *range) {
    if (range->first_tile >= range->stop_tile) return; /* an idle worker's empty share */
    /* Locals, so that the loops keep the pointers in registers. */
    const float *const images = range->images;
    const int64_t batch = range->batch, image_width = range->image_width;
    const int64_t pixels = range->pixels;
    const int32_t *const row_pointers = range->row_pointers;
    const uint32_t *const row_offsets = range->row_offsets;
    const float *const values = range->values;
    const int64_t *const rows = range->rows, *const pointer_starts = range->pointer_starts;
    const int64_t *const offset_starts = range->offset_starts;
    const int64_t *const value_starts = range->value_starts, *const flags = range->flags;
    const int64_t passes = range->passes, width = range->width;
    float *const work = range->work, *const logits = range->logits;
    const int64_t outputs = rows[passes - 1];
    for (int64_t tile = range->first_tile; tile < range->stop_tile; ++tile) {
        float *current = work, *following = work + width * TILE;
        const int64_t start = tile * TILE;
        const int64_t count = batch - start < TILE ? batch - start : TILE;
        transpose_tile(images + start * image_width, count, image_width, pixels, current);
        for (int64_t pass = 0; pass < passes; ++pass) {
            const int32_t *pointers = row_pointers + pointer_starts[pass];
            const uint32_t *offsets = row_offsets + offset_starts[pass];
            const float *weights = values + value_starts[pass];
            const int accumulate = (flags[pass] & ACCUMULATE) != 0;
            const int relu = (flags[pass] & APPLY_RELU) != 0;
            if (flags[pass] & DENSE_PASS) {
                /* pointers: the block's first column and its number of columns. */
                const int64_t columns = pointers[1];
                const float *block = current + (int64_t)pointers[0] * TILE;
                for (int64_t group = 0; group * GROUP < rows[pass]; ++group)
                    for (int first_lane = 0; first_lane < LANES; first_lane += CHUNK)
                        dense_group((vec *)(following + group * GROUP * TILE),
                                    weights + group * GROUP * columns, first_lane, columns,
                                    block, accumulate, relu);
            } else {
                const vec zero = {0};
                const int32_t *order = pointers + rows[pass] + 1; /* most non-zeros first */
                for (int64_t position = 0; position < rows[pass]; ++position) {
                    vec *target = (vec *)(following + (int64_t)order[position] * TILE);
                    vec sums[LANES];
                    for (int lane = 0; lane < LANES; ++lane)
                        sums[lane] = accumulate ? target[lane] : zero;
                    add_row(sums, offsets + pointers[position], offsets + pointers[position + 1],
                            weights + pointers[position], current);
                    if (relu)
                        for (int lane = 0; lane < LANES; ++lane) RELU(sums[lane]);
                    for (int lane = 0; lane < LANES; ++lane) target[lane] = sums[lane];
                }
            }
            if (flags[pass] & END_OF_LAYER) {
                float *swap = current;
                current = following;
                following = swap;
            }
        }
        for (int64_t lane = 0; lane < count; ++lane)
            for (int64_t output = 0; output < outputs; ++output)
                logits[(start + lane) * outputs + output] = current[output * TILE + lane];
    }
}

#define MAX_THREADS 64
#define SPIN_NANOSECONDS 100000 /* a worker waits this long for the next call before sleeping */

/* Worker threads kept between calls: starting a thread per call, or waking a sleeping one,
 * costs a virtual machine 0.1-0.3 ms, as much as a whole forward pass at high sparsity. After
 * a job a worker spins for SPIN_NANOSECONDS (so back-to-back calls find it awake), then
 * sleeps on a condition variable. One call at a time uses the pool (call_lock); the call
 * sets `task`, which worker i runs as task(i). */
static struct {
    pthread_mutex_t call_lock, lock;
    pthread_cond_t wake;
    pid_t owner; /* the process that started the workers; a forked child starts its own */
    int64_t workers, started_at[MAX_THREADS];
    _Atomic int64_t generation, pending, arrived;
    void (*task)(int64_t index);
    struct tile_range ranges[MAX_THREADS];
} pool = {.call_lock = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
          .wake = PTHREAD_COND_INITIALIZER};

static int64_t now_nanoseconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static void *worker(void *argument) {
    const int64_t index = (int64_t)(intptr_t)argument;
    int64_t seen = pool.started_at[index]; /* the generation before the call that started it */
    for (;;) {
        const int64_t spin_until = now_nanoseconds() + SPIN_NANOSECONDS;
        while (atomic_load(&pool.generation) == seen && now_nanoseconds() < spin_until)
            for (int pause = 0; pause < 32; ++pause) __builtin_ia32_pause();
        if (atomic_load(&pool.generation) == seen) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.generation) == seen) pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = atomic_load(&pool.generation);
        pool.task(index);
        atomic_fetch_sub(&pool.pending, 1);
    }
    return NULL;
}

/* Makes sure `wanted` workers run in this process; returns how many do. */
static int64_t start_workers(int64_t wanted) {
    if (pool.owner != getpid()) {
        pool.owner = getpid();
        pool.workers = 0;
    }
    while (pool.workers < wanted) {
        pthread_t thread;
        pool.started_at[pool.workers + 1] = atomic_load(&pool.generation);
        if (pthread_create(&thread, NULL, worker, (void *)(intptr_t)(pool.workers + 1)) != 0)
            break;
        pthread_detach(thread);
        ++pool.workers;
    }
    return pool.workers;
}

/* Runs task(0) on the calling thread and task(i) on worker i for every worker, then waits for
 * them all. Call with call_lock held and at least one worker started. */
static void run_on_pool(void (*task)(int64_t index)) {
    pool.task = task;
    atomic_store(&pool.pending, pool.workers);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    task(0);
    while (atomic_load(&pool.pending) > 0) __builtin_ia32_pause();
}

static void run_tile_task(int64_t index) { forward_tiles(&pool.ranges[index]); }

/* Logits of a batch, its tiles split evenly between the calling thread and threads - 1
 * pool workers; work holds threads * 2 * width * TILE floats, where width is at least the
 * widest layer and `pixels` rounded up to 16 (pixels <= image_width: the first matrix reads
 * the images' first `pixels` pixels). Returns the number of threads that ran (fewer than
 * asked if a worker could not be started). */
int64_t forward_batch(const float *images, int64_t batch, int64_t image_width,
                      int64_t pixels, const int32_t *row_pointers,
                      const uint32_t *row_offsets, const float *values, const int64_t *rows,
                      const int64_t *pointer_starts, const int64_t *offset_starts,
                      const int64_t *value_starts, const int64_t *flags, int64_t passes,
                      float *work, int64_t width, int64_t threads, float *logits) {
    const int64_t tiles = (batch + TILE - 1) / TILE;
    int64_t parts = threads < tiles ? threads : tiles;
    if (parts > MAX_THREADS) parts = MAX_THREADS;
    if (parts < 1) parts = 1;
    pthread_mutex_lock(&pool.call_lock);
    if (parts > 1) {
        const int64_t running = start_workers(parts - 1) + 1;
        if (running < parts) parts = running;
    }
    const int64_t share = (tiles + parts - 1) / parts;
    for (int64_t part = 0; part < parts; ++part) {
        const int64_t first = part * share;
        pool.ranges[part] = (struct tile_range){
            images, batch, image_width, pixels, row_pointers, row_offsets,
            values, rows, pointer_starts, offset_starts, value_starts, flags, passes,
            work + part * 2 * width * TILE, width, first,
            first + share < tiles ? first + share : tiles, logits};
    }
    /* Workers past the parts of this call get empty ranges. */
    for (int64_t part = parts; part <= pool.workers && part < MAX_THREADS; ++part)
        pool.ranges[part] = (struct tile_range){.first_tile = 0, .stop_tile = 0};
    if (parts > 1)
        run_on_pool(run_tile_task);
    else
        run_tile_task(0);
    pthread_mutex_unlock(&pool.call_lock);
    return parts;
}

/* ---- Batch 1: one image, each layer's rows split between parts (threads) ---- */

#define FORMAT_CSR 0   /* rows: a sparse dot product per row */
#define FORMAT_CSC 1   /* columns: each non-zero activation adds its column (zeros skipped) */
#define FORMAT_DENSE 2 /* dense columns in runs of vectors, zero activations skipped */
#define MAX_PARTS 8
#define RUN_VECTORS 8  /* 8-float vectors of output rows per run of a dense layer */

/* One layer of a batch-1 network, its rows split into parts: part p computes rows
 * row_starts[p] .. row_starts[p + 1] - 1 from its own arrays. CSR: row pointers, column
 * indices, values of those rows. CSC: column pointers, row indices (from the part's first
 * row) and values of those rows. Dense: the part's rows, padded with zero rows to a multiple
 * of 8, in runs of RUN_VECTORS vectors (the last run shorter); a run of v vectors is stored
 * (inputs, 8 v), so each activation multiplies one contiguous stretch. */
struct vector_layer {
    int64_t format, relu, inputs, rows;
    int64_t row_starts[MAX_PARTS + 1];
    const int32_t *pointers[MAX_PARTS];
    const uint16_t *indices[MAX_PARTS];
    const float *values[MAX_PARTS];
};

/* A batch-1 network: its layers, the pixels the first layer reads (NULL: the first
 * `inputs`), and work space: two activation vectors of `width` floats and per part a list of
 * `width` active inputs. */
struct vector_network {
    int64_t layers, parts, inputs, width;
    const int64_t *input_units;
    const struct vector_layer *layer;
    float *activations;
    int32_t *active;
};

static float csr_dot(const uint16_t *restrict index, const float *restrict weight,
                     int32_t position, int32_t stop, const float *restrict activations) {
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; position + 4 <= stop; position += 4) {
        s0 += weight[position] * activations[index[position]];
        s1 += weight[position + 1] * activations[index[position + 1]];
        s2 += weight[position + 2] * activations[index[position + 2]];
        s3 += weight[position + 3] * activations[index[position + 3]];
    }
    for (; position < stop; ++position) s0 += weight[position] * activations[index[position]];
    return (s0 + s1) + (s2 + s3);
}

/* Lists the inputs whose activation is not zero; returns how many (branch-free). */
static int64_t list_active(const float *activations, int64_t inputs, int32_t *active) {
    int64_t count = 0;
    for (int64_t input = 0; input < inputs; ++input) {
        active[count] = (int32_t)input;
        count += activations[input] != 0.0f;
    }
    return count;
}

/* Adds each active input's column (CSC) to the output rows. The columns are scattered over
 * memory, so the start of the one PREFETCH_AHEAD columns on is fetched ahead. */
#define PREFETCH_AHEAD 4
static void csc_add(const int32_t *pointers, const uint16_t *restrict index,
                    const float *restrict weight, const int32_t *active, int64_t count,
                    const float *activations, float *restrict output) {
    for (int64_t a = 0; a < count; ++a) {
        if (a + PREFETCH_AHEAD < count) {
            const int32_t ahead = pointers[active[a + PREFETCH_AHEAD]];
            __builtin_prefetch(index + ahead);
            __builtin_prefetch(weight + ahead);
            __builtin_prefetch(weight + ahead + 16);
        }
        const float x = activations[active[a]];
        int32_t position = pointers[active[a]];
        const int32_t stop = pointers[active[a] + 1];
        for (; position + 4 <= stop; position += 4) {
            output[index[position]] += weight[position] * x;
            output[index[position + 1]] += weight[position + 1] * x;
            output[index[position + 2]] += weight[position + 2] * x;
            output[index[position + 3]] += weight[position + 3] * x;
        }
        for (; position < stop; ++position) output[index[position]] += weight[position] * x;
    }
}

/* `vectors` 8-row vectors of a dense matrix's outputs, each kept in a register while every
 * active input adds its multiple of their contiguous stretch of its column. Inlined with a
 * constant `vectors`, so that the accumulators stay in registers. */
static inline __attribute__((always_inline)) void dense_run(
        const float *restrict block, const int vectors, const int32_t *restrict active,
        int64_t count, const float *restrict activations, float *restrict output) {
    vec8 sums[RUN_VECTORS] = {{0}};
    for (int64_t a = 0; a < count; ++a) {
        const float x = activations[active[a]];
        const vec8 *column = (const vec8 *)(block + (int64_t)active[a] * 8 * vectors);
        for (int vector = 0; vector < vectors; ++vector) sums[vector] += x * column[vector];
    }
    for (int vector = 0; vector < vectors; ++vector) ((vec8 *)output)[vector] = sums[vector];
}

/* A dense part of `vectors` vectors of rows, stored in runs of RUN_VECTORS (the last shorter). */
static void dense_part(const float *weight, int64_t inputs, int64_t vectors,
                       const int32_t *active, int64_t count, const float *activations,
                       float *output) {
    for (int64_t first = 0; first < vectors; first += RUN_VECTORS) {
        const int64_t run = vectors - first < RUN_VECTORS ? vectors - first : RUN_VECTORS;
        const float *block = weight + first * 8 * inputs;
        float *target = output + first * 8;
        switch (run) {
            case 1: dense_run(block, 1, active, count, activations, target); break;
            case 2: dense_run(block, 2, active, count, activations, target); break;
            case 3: dense_run(block, 3, active, count, activations, target); break;
            case 4: dense_run(block, 4, active, count, activations, target); break;
            case 5: dense_run(block, 5, active, count, activations, target); break;
            case 6: dense_run(block, 6, active, count, activations, target); break;
            case 7: dense_run(block, 7, active, count, activations, target); break;
            default: dense_run(block, 8, active, count, activations, target); break;
        }
    }
}

/* The batch-1 call the pool runs: its network, and the barrier count it started at. */
static struct {
    const struct vector_network *network;
    int64_t barrier_base;
} vector_call;

/* Waits until every part has arrived at the barrier after `layer`. */
static void layer_barrier(int64_t layer) {
    const int64_t target = vector_call.barrier_base + (layer + 1) * vector_call.network->parts;
    atomic_fetch_add(&pool.arrived, 1);
    while (atomic_load(&pool.arrived) < target) __builtin_ia32_pause();
}

/* Part `part` of one layer: its rows of `following` from the activations `current`. */
static void layer_part(const struct vector_network *network, int64_t layer, int64_t part,
                       const float *current, float *following) {
    const struct vector_layer *l = &network->layer[layer];
    const int64_t first = l->row_starts[part], rows = l->row_starts[part + 1] - first;
    float *output = following + first;
    if (l->format == FORMAT_CSR) {
        const int32_t *pointers = l->pointers[part];
        for (int64_t row = 0; row < rows; ++row) {
            const float total = csr_dot(l->indices[part], l->values[part], pointers[row],
                                        pointers[row + 1], current);
            output[row] = l->relu && total < 0.0f ? 0.0f : total;
        }
        return;
    }
    int32_t *active = network->active + part * network->width;
    const int64_t count = list_active(current, l->inputs, active);
    if (l->format == FORMAT_CSC) {
        memset(output, 0, (size_t)rows * sizeof(float));
        csc_add(l->pointers[part], l->indices[part], l->values[part], active, count, current,
                output);
    } else {
        dense_part(l->values[part], l->inputs, (rows + 7) / 8, active, count, current, output);
    }
    if (l->relu)
        for (int64_t row = 0; row < rows; ++row)
            output[row] = output[row] < 0.0f ? 0.0f : output[row];
}

/* The activations layer `layer` reads: the two vectors alternate, the input in the first. */
static float *layer_input(const struct vector_network *network, int64_t layer) {
    return network->activations + (layer % 2) * network->width;
}

/* Part `part` of every layer, the parts meeting at a barrier after each layer but the last. */
static void vector_task(int64_t part) {
    const struct vector_network *network = vector_call.network;
    if (part >= network->parts) return; /* an idle worker */
    for (int64_t layer = 0; layer < network->layers; ++layer) {
        layer_part(network, layer, part, layer_input(network, layer),
                   layer_input(network, layer + 1));
        if (layer < network->layers - 1) layer_barrier(layer);
    }
}

/* Logits of one image (the network's inputs gathered from `image`), the layers' parts run by
 * the calling thread and network->parts - 1 pool workers; if a worker cannot be started, the
 * calling thread runs every part. Returns the number of threads that ran. */
int64_t forward_vector(const struct vector_network *network, const float *image, float *logits) {
    pthread_mutex_lock(&pool.call_lock);
    float *input = network->activations;
    for (int64_t feature = 0; feature < network->inputs; ++feature)
        input[feature] = image[network->input_units == NULL ? feature
                                                            : network->input_units[feature]];
    int64_t threads = network->parts;
    if (threads > 1 && start_workers(threads - 1) + 1 < threads) threads = 1;
    if (threads > 1) {
        vector_call.network = network;
        vector_call.barrier_base = atomic_load(&pool.arrived);
        run_on_pool(vector_task);
    } else {
        for (int64_t layer = 0; layer < network->layers; ++layer)
            for (int64_t part = 0; part < network->parts; ++part)
                layer_part(network, layer, part, layer_input(network, layer),
                           layer_input(network, layer + 1));
    }
    memcpy(logits, layer_input(network, network->layers),
           (size_t)network->layer[network->layers - 1].rows * sizeof(float));
    pthread_mutex_unlock(&pool.call_lock);
    return threads;
}
