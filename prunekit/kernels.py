"""Compiled (numba) forward passes of a ReLU MLP without biases whose matrices are CSR.

Each function takes every layer's CSR arrays concatenated (row pointers, column indices,
values), the rows of each layer and the offsets of each layer's row pointers and non-zeros in
the concatenated arrays; the last layer gets no ReLU. They release the GIL, so that several
threads can run tiles of one batch at once.
"""

import numba
import numpy as np

TILE = 16  # Images per tile: the accumulators s0..s15 below are one row of a tile.

_FLAGS = {"nogil": True, "cache": True, "boundscheck": False, "fastmath": {"contract"}}


@numba.njit(**_FLAGS, error_model="numpy")
def forward_vector(image, row_pointers, column_indices, values, rows, pointer_offsets,
                   nonzero_offsets, width, logits):  # pragma: no cover (compiled)
    """Computes the logits of one image, a sparse matrix-vector product per layer.

    Args:
        image: float32 (inputs,).
        row_pointers: int32, every layer's CSR row pointers.
        column_indices: int32, every layer's CSR column indices.
        values: float32, every layer's non-zero values.
        rows: int64 (layers,), each layer's output size.
        pointer_offsets: int64 (layers,), where each layer's row pointers start.
        nonzero_offsets: int64 (layers,), where each layer's non-zeros start.
        width: The largest layer size.
        logits: float32 (outputs,), written.
    """
    current = np.zeros(width, np.float32)
    following = np.zeros(width, np.float32)
    current[:image.shape[0]] = image
    last = rows.shape[0] - 1
    for layer in range(rows.shape[0]):
        pointers = row_pointers[pointer_offsets[layer]:]
        indices = column_indices[nonzero_offsets[layer]:]
        weights = values[nonzero_offsets[layer]:]
        for row in range(rows[layer]):
            total = np.float32(0.0)
            for position in range(pointers[row], pointers[row + 1]):
                total += weights[position] * current[indices[position]]
            following[row] = total if layer == last else max(total, np.float32(0.0))
        current, following = following, current
    logits[:] = current[:logits.shape[0]]


@numba.njit(**_FLAGS)
def forward_tiles(images, row_pointers, column_indices, values, rows, pointer_offsets,
                  nonzero_offsets, width, first_tile, stop_tile, logits):  # pragma: no cover
    """Computes the logits of tiles ``first_tile`` to ``stop_tile`` (excluded) of a batch.

    Each tile holds its activations as (features, :data:`TILE`) with the images innermost; a
    row of the output accumulates in sixteen scalars, which the compiler keeps in vector
    registers, and each non-zero weight adds its multiple of one contiguous activation row.

    Args:
        images: float32 (batch, inputs).
        row_pointers: int32, every layer's CSR row pointers.
        column_indices: int32, every layer's CSR column indices.
        values: float32, every layer's non-zero values.
        rows: int64 (layers,), each layer's output size.
        pointer_offsets: int64 (layers,), where each layer's row pointers start.
        nonzero_offsets: int64 (layers,), where each layer's non-zeros start.
        width: The largest layer size.
        first_tile: The first tile to compute.
        stop_tile: One past the last tile to compute.
        logits: float32 (batch, outputs), written for the images of these tiles.
    """
    batch = images.shape[0]
    last = rows.shape[0] - 1
    zero = np.float32(0.0)
    current = np.zeros((width, TILE), np.float32)
    following = np.zeros((width, TILE), np.float32)
    for tile in range(first_tile, stop_tile):
        start = tile * TILE
        count = min(TILE, batch - start)
        current[:, :] = zero
        for feature in range(images.shape[1]):  # Transpose the tile's images.
            for lane in range(count):
                current[feature, lane] = images[start + lane, feature]
        for layer in range(rows.shape[0]):
            pointers = row_pointers[pointer_offsets[layer]:]
            indices = column_indices[nonzero_offsets[layer]:]
            weights = values[nonzero_offsets[layer]:]
            for row in range(rows[layer]):
                s0 = zero
                s1 = zero
                s2 = zero
                s3 = zero
                s4 = zero
                s5 = zero
                s6 = zero
                s7 = zero
                s8 = zero
                s9 = zero
                s10 = zero
                s11 = zero
                s12 = zero
                s13 = zero
                s14 = zero
                s15 = zero
                for position in range(pointers[row], pointers[row + 1]):
                    w = weights[position]
                    source = current[indices[position]]
                    s0 += w * source[0]
                    s1 += w * source[1]
                    s2 += w * source[2]
                    s3 += w * source[3]
                    s4 += w * source[4]
                    s5 += w * source[5]
                    s6 += w * source[6]
                    s7 += w * source[7]
                    s8 += w * source[8]
                    s9 += w * source[9]
                    s10 += w * source[10]
                    s11 += w * source[11]
                    s12 += w * source[12]
                    s13 += w * source[13]
                    s14 += w * source[14]
                    s15 += w * source[15]
                target = following[row]
                if layer == last:
                    target[0] = s0
                    target[1] = s1
                    target[2] = s2
                    target[3] = s3
                    target[4] = s4
                    target[5] = s5
                    target[6] = s6
                    target[7] = s7
                    target[8] = s8
                    target[9] = s9
                    target[10] = s10
                    target[11] = s11
                    target[12] = s12
                    target[13] = s13
                    target[14] = s14
                    target[15] = s15
                else:
                    target[0] = max(s0, zero)
                    target[1] = max(s1, zero)
                    target[2] = max(s2, zero)
                    target[3] = max(s3, zero)
                    target[4] = max(s4, zero)
                    target[5] = max(s5, zero)
                    target[6] = max(s6, zero)
                    target[7] = max(s7, zero)
                    target[8] = max(s8, zero)
                    target[9] = max(s9, zero)
                    target[10] = max(s10, zero)
                    target[11] = max(s11, zero)
                    target[12] = max(s12, zero)
                    target[13] = max(s13, zero)
                    target[14] = max(s14, zero)
                    target[15] = max(s15, zero)
            current, following = following, current
        for lane in range(count):
            for output in range(logits.shape[1]):
                logits[start + lane, output] = current[output, lane]
