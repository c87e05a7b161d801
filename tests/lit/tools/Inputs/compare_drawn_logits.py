"""Checks generate --logits-out against forward --logits-out over the prompt
and the generated ids: row i of the first (the cached decode's logits of the
i-th token drawn) must match the recomputed logits at position P - 1 + i.
Prints the number of rows and the largest relative difference."""
import sys

import numpy as np

drawn, full, prompt_len = np.load(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3])
rows = drawn.shape[0]
expected = full[prompt_len - 1:prompt_len - 1 + rows]
assert expected.shape == drawn.shape, (expected.shape, drawn.shape)
scale = np.abs(expected).max(axis=1, keepdims=True)
worst = float((np.abs(drawn - expected) / scale).max())
print("rows", rows, "within 1e-5:", worst < 1e-5, "(max relative %.1e)" % worst)
