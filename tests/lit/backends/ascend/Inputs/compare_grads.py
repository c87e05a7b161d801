"""compare_grads.py DIR REF_DIR TOL: loss and gradient .npy files of two
`attnedit-run grad` runs. Each tensor's max|a-b| is measured against the
largest reference gradient of all (a gradient whose own scale is ~1e-11, such
as a sink logit's, has no meaningful relative error). Exits 1 past TOL."""
import os
import sys

import numpy as np

a_dir, b_dir, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
names = sorted(f for f in os.listdir(b_dir) if f.endswith(".npy") and f != "loss.npy")
if sorted(os.listdir(a_dir)) != sorted(os.listdir(b_dir)):
    sys.exit("the two runs wrote different files")
scale = max(float(np.max(np.abs(np.load(os.path.join(b_dir, f))))) for f in names)
worst, where = 0.0, ""
for f in names:
    a, b = np.load(os.path.join(a_dir, f)), np.load(os.path.join(b_dir, f))
    if a.shape != b.shape:
        sys.exit("%s: shapes differ" % f)
    err = float(np.max(np.abs(a - b))) / scale
    if err > worst:
        worst, where = err, f
print("%d gradients, worst difference %.3g of the largest gradient (%s), tolerance %g"
      % (len(names), worst, where, tol))
sys.exit(0 if worst <= tol else 1)
