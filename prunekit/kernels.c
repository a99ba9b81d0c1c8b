/* Whole-network forward passes of a ReLU MLP without biases whose matrices are CSR.
 *
 * Every layer's CSR arrays are concatenated (row pointers, column indices, values); rows[l],
 * pointer_offsets[l] and nonzero_offsets[l] locate layer l in them. The last layer gets no
 * ReLU. Built by prunekit/kernels.py on first use (cc -O3 -march=native) and called through
 * ctypes, which releases the GIL: threads may run different tiles of one batch at once.
 */
#include <stdint.h>
#include <string.h>
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
void forward_vector(const float *image, int64_t inputs, const int32_t *row_pointers,
                    const int32_t *column_indices, const float *values, const int64_t *rows,
                    const int64_t *pointer_offsets, const int64_t *nonzero_offsets,
                    int64_t layers, float *work, int64_t width, float *logits) {
    float *current = work, *following = work + width;
    memcpy(current, image, (size_t)inputs * sizeof(float));
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

/* Logits of tiles first_tile .. stop_tile - 1 of a batch (images row-major, batch x inputs).
 * A tile's activations are (features, TILE) with the images innermost; an output row's 64
 * accumulators stay in vector registers while each non-zero adds its multiple of one
 * contiguous activation row. Each layer runs as one or more passes over blocks of its input
 * columns (flags: ACCUMULATE adds to the rows the previous pass left, END_OF_LAYER makes the
 * output the next layer's input, RELU clamps it), so that the activation rows one pass reads
 * stay in the L1 cache. work holds 2 * width * TILE floats. */
#define ACCUMULATE 1
#define END_OF_LAYER 2
#define APPLY_RELU 4

void forward_tiles(const float *images, int64_t batch, int64_t inputs,
                   const int32_t *row_pointers, const int32_t *column_indices,
                   const float *values, const int64_t *rows, const int64_t *pointer_offsets,
                   const int64_t *nonzero_offsets, const int64_t *flags, int64_t passes,
                   float *work, int64_t width, int64_t first_tile, int64_t stop_tile,
                   float *logits) {
    const int64_t outputs = rows[passes - 1];
    for (int64_t tile = first_tile; tile < stop_tile; ++tile) {
        float *current = work, *following = work + width * TILE;
        const int64_t start = tile * TILE;
        const int64_t count = batch - start < TILE ? batch - start : TILE;
        for (int64_t feature = 0; feature < inputs; ++feature) {
            float *target = current + feature * TILE;
            for (int64_t lane = 0; lane < count; ++lane)
                target[lane] = images[(start + lane) * inputs + feature];
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
                for (int32_t position = pointers[row]; position < pointers[row + 1];
                     ++position) {
                    const float w = weights[position];
                    const vec8 *source = (const vec8 *)(current + (int64_t)indices[position] * TILE);
                    a0 += w * source[0];
                    a1 += w * source[1];
                    a2 += w * source[2];
                    a3 += w * source[3];
                    a4 += w * source[4];
                    a5 += w * source[5];
                    a6 += w * source[6];
                    a7 += w * source[7];
                }
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
