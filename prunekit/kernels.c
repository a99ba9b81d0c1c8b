/* Whole-network forward passes of a ReLU MLP without biases whose matrices are CSR.
 *
 * Every layer's CSR arrays are concatenated (row pointers, column indices, values); rows[l],
 * pointer_offsets[l] and nonzero_offsets[l] locate layer l in them. The last layer gets no
 * ReLU. Built by prunekit/kernels.py on first use (cc -O3 -march=native -pthread) and called
 * through ctypes. The inputs are the images' full rows; input_units (NULL: all) names the
 * pixels the first matrix reads, gathered here rather than by a copy before the call.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#define TILE 64 /* images per tile: eight 8-float vectors of accumulators per output row */

typedef float vec8 __attribute__((vector_size(32), aligned(4)));
typedef int32_t mask8 __attribute__((vector_size(32), aligned(4)));

#define RELU(a) ((a) = (vec8)((mask8)(a) & ((a) > zero)))

/* One row's dot product with the activations: AVX2 gathers of 16 activations at a time where
 * the CPU has them (about twice as fast as scalar loads), four scalar partial sums otherwise. */
static float sparse_dot(const int32_t *indices, const float *weights, int32_t position,
                        int32_t stop, const float *activations) {
    float total = 0.0f;
#ifdef __AVX2__
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (; position + 16 <= stop; position += 16) {
        const __m256i i0 = _mm256_loadu_si256((const __m256i *)(indices + position));
        const __m256i i1 = _mm256_loadu_si256((const __m256i *)(indices + position + 8));
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + position),
                             _mm256_i32gather_ps(activations, i0, 4), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(weights + position + 8),
                             _mm256_i32gather_ps(activations, i1, 4), a1);
    }
    a0 = _mm256_add_ps(a0, a1);
    __m128 half = _mm_add_ps(_mm256_castps256_ps128(a0), _mm256_extractf128_ps(a0, 1));
    half = _mm_hadd_ps(half, half);
    half = _mm_hadd_ps(half, half);
    total = _mm_cvtss_f32(half);
#endif
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    for (; position + 4 <= stop; position += 4) {
        s0 += weights[position] * activations[indices[position]];
        s1 += weights[position + 1] * activations[indices[position + 1]];
        s2 += weights[position + 2] * activations[indices[position + 2]];
        s3 += weights[position + 3] * activations[indices[position + 3]];
    }
    for (; position < stop; ++position) s0 += weights[position] * activations[indices[position]];
    return total + ((s0 + s1) + (s2 + s3));
}

/* Logits of one image: a sparse matrix-vector product per layer. work holds 2 * width floats. */
void forward_vector(const float *image, const int64_t *input_units, int64_t inputs,
                    const int32_t *row_pointers,
                    const int32_t *column_indices, const float *values, const int64_t *rows,
                    const int64_t *pointer_offsets, const int64_t *nonzero_offsets,
                    int64_t layers, float *work, int64_t width, float *logits) {
    float *current = work, *following = work + width;
    if (input_units == NULL)
        memcpy(current, image, (size_t)inputs * sizeof(float));
    else
        for (int64_t feature = 0; feature < inputs; ++feature)
            current[feature] = image[input_units[feature]];
    for (int64_t layer = 0; layer < layers; ++layer) {
        const int32_t *pointers = row_pointers + pointer_offsets[layer];
        const int32_t *indices = column_indices + nonzero_offsets[layer];
        const float *weights = values + nonzero_offsets[layer];
        const int relu = layer < layers - 1;
        for (int64_t row = 0; row < rows[layer]; ++row) {
            const float total = sparse_dot(indices, weights, pointers[row], pointers[row + 1],
                                           current);
            following[row] = relu && total < 0.0f ? 0.0f : total;
        }
        float *swap = current;
        current = following;
        following = swap;
    }
    memcpy(logits, current, (size_t)rows[layers - 1] * sizeof(float));
}

/* Adds to a row's 64 accumulators each non-zero weight times its activation row. Its own
 * function, so that the loop keeps every pointer in a register. */
static inline __attribute__((always_inline)) void add_row(
        vec8 *r0, vec8 *r1, vec8 *r2, vec8 *r3, vec8 *r4, vec8 *r5, vec8 *r6, vec8 *r7,
        const int32_t *restrict index, const int32_t *end, const float *restrict weight,
        const float *restrict activations) {
    vec8 a0 = *r0, a1 = *r1, a2 = *r2, a3 = *r3, a4 = *r4, a5 = *r5, a6 = *r6, a7 = *r7;
    for (; index < end; ++index, ++weight) {
        const float w = *weight;
        const vec8 *source = (const vec8 *)(activations + (int64_t)*index * TILE);
        a0 += w * source[0];
        a1 += w * source[1];
        a2 += w * source[2];
        a3 += w * source[3];
        a4 += w * source[4];
        a5 += w * source[5];
        a6 += w * source[6];
        a7 += w * source[7];
    }
    *r0 = a0; *r1 = a1; *r2 = a2; *r3 = a3; *r4 = a4; *r5 = a5; *r6 = a6; *r7 = a7;
}

#define ACCUMULATE 1
#define END_OF_LAYER 2
#define APPLY_RELU 4

/* Logits of tiles first_tile .. stop_tile - 1 of a batch (images row-major, batch x
 * image_width).
 * A tile's activations are (features, TILE) with the images innermost; an output row's 64
 * accumulators stay in vector registers while each non-zero adds its multiple of one
 * contiguous activation row. Each layer runs as one or more passes over blocks of its input
 * columns (flags: ACCUMULATE adds to the rows the previous pass left, END_OF_LAYER makes the
 * output the next layer's input, RELU clamps it), so that the activation rows one pass reads
 * stay in the L1 cache. work holds 2 * width * TILE floats. */
static void forward_tiles(const float *images, int64_t batch, int64_t image_width,
                          const int64_t *input_units, int64_t inputs,
                          const int32_t *row_pointers, const int32_t *column_indices,
                          const float *values, const int64_t *rows,
                          const int64_t *pointer_offsets, const int64_t *nonzero_offsets,
                          const int64_t *flags, int64_t passes, float *work, int64_t width,
                          int64_t first_tile, int64_t stop_tile, float *logits) {
    const int64_t outputs = rows[passes - 1];
    for (int64_t tile = first_tile; tile < stop_tile; ++tile) {
        float *current = work, *following = work + width * TILE;
        const int64_t start = tile * TILE;
        const int64_t count = batch - start < TILE ? batch - start : TILE;
        for (int64_t feature = 0; feature < inputs; ++feature) {
            float *target = current + feature * TILE;
            const float *pixel = images + start * image_width +
                                 (input_units == NULL ? feature : input_units[feature]);
            for (int64_t lane = 0; lane < count; ++lane)
                target[lane] = pixel[lane * image_width];
            for (int64_t lane = count; lane < TILE; ++lane) target[lane] = 0.0f;
        }
        for (int64_t pass = 0; pass < passes; ++pass) {
            const int32_t *pointers = row_pointers + pointer_offsets[pass];
            const int32_t *indices = column_indices + nonzero_offsets[pass];
            const float *weights = values + nonzero_offsets[pass];
            const int accumulate = (flags[pass] & ACCUMULATE) != 0;
            const int relu = (flags[pass] & APPLY_RELU) != 0;
            const vec8 zero = {0};
            for (int64_t row = 0; row < rows[pass]; ++row) {
                vec8 *target = (vec8 *)(following + row * TILE);
                vec8 a0 = zero, a1 = zero, a2 = zero, a3 = zero, a4 = zero, a5 = zero,
                     a6 = zero, a7 = zero;
                if (accumulate) {
                    a0 = target[0]; a1 = target[1]; a2 = target[2]; a3 = target[3];
                    a4 = target[4]; a5 = target[5]; a6 = target[6]; a7 = target[7];
                }
                add_row(&a0, &a1, &a2, &a3, &a4, &a5, &a6, &a7, indices + pointers[row],
                        indices + pointers[row + 1], weights + pointers[row], current);
                if (relu) {
                    RELU(a0); RELU(a1); RELU(a2); RELU(a3);
                    RELU(a4); RELU(a5); RELU(a6); RELU(a7);
                }
                target[0] = a0; target[1] = a1; target[2] = a2; target[3] = a3;
                target[4] = a4; target[5] = a5; target[6] = a6; target[7] = a7;
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

/* The arguments of forward_tiles for one thread's share of the tiles. */
struct tile_range {
    const float *images;
    int64_t batch, image_width;
    const int64_t *input_units;
    int64_t inputs;
    const int32_t *row_pointers, *column_indices;
    const float *values;
    const int64_t *rows, *pointer_offsets, *nonzero_offsets, *flags;
    int64_t passes;
    float *work;
    int64_t width, first_tile, stop_tile;
    float *logits;
};

static void *run_tile_range(void *argument) {
    const struct tile_range *r = argument;
    if (r->first_tile >= r->stop_tile) return NULL; /* an idle worker's empty share */
    forward_tiles(r->images, r->batch, r->image_width, r->input_units, r->inputs,
                  r->row_pointers, r->column_indices, r->values, r->rows, r->pointer_offsets,
                  r->nonzero_offsets, r->flags, r->passes, r->work, r->width, r->first_tile,
                  r->stop_tile, r->logits);
    return NULL;
}

#define MAX_THREADS 64
#define SPIN_NANOSECONDS 100000 /* a worker waits this long for the next call before sleeping */

/* Worker threads kept between calls: starting a thread per call, or waking a sleeping one,
 * costs a virtual machine 0.1-0.3 ms, as much as a whole forward pass at high sparsity. After
 * a job a worker spins for SPIN_NANOSECONDS (so back-to-back calls find it awake), then
 * sleeps on a condition variable. One call at a time uses the pool (call_lock). */
static struct {
    pthread_mutex_t call_lock, lock;
    pthread_cond_t wake;
    pid_t owner; /* the process that started the workers; a forked child starts its own */
    int64_t workers, started_at[MAX_THREADS];
    _Atomic int64_t generation, pending;
    struct tile_range jobs[MAX_THREADS];
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
        run_tile_range(&pool.jobs[index]);
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

/* Logits of a batch, its tiles split evenly between the calling thread and threads - 1
 * pool workers; work holds threads * 2 * width * TILE floats. Returns the number of threads
 * that ran (fewer than asked if a worker could not be started). */
int64_t forward_batch(const float *images, int64_t batch, int64_t image_width,
                      const int64_t *input_units, int64_t inputs, const int32_t *row_pointers,
                      const int32_t *column_indices, const float *values, const int64_t *rows,
                      const int64_t *pointer_offsets, const int64_t *nonzero_offsets,
                      const int64_t *flags, int64_t passes, float *work, int64_t width,
                      int64_t threads, float *logits) {
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
        pool.jobs[part] = (struct tile_range){
            images, batch, image_width, input_units, inputs, row_pointers, column_indices,
            values, rows, pointer_offsets, nonzero_offsets, flags, passes,
            work + part * 2 * width * TILE, width, first,
            first + share < tiles ? first + share : tiles, logits};
    }
    /* Workers past the parts of this call get empty ranges. */
    for (int64_t part = parts; part <= pool.workers && part < MAX_THREADS; ++part)
        pool.jobs[part] = (struct tile_range){.first_tile = 0, .stop_tile = 0};
    if (parts > 1) {
        atomic_store(&pool.pending, pool.workers);
        pthread_mutex_lock(&pool.lock);
        atomic_fetch_add(&pool.generation, 1);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    run_tile_range(&pool.jobs[0]);
    if (parts > 1)
        while (atomic_load(&pool.pending) > 0) __builtin_ia32_pause();
    pthread_mutex_unlock(&pool.call_lock);
    return parts;
}
