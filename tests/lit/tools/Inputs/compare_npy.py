"""compare_npy.py A.npy B.npy TOL: exits 1 unless max|a-b| <= TOL·max|b|."""
import sys

import numpy as np

a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
tol = float(sys.argv[3])
if a.shape != b.shape:
    sys.exit("shapes differ: %s vs %s" % (a.shape, b.shape))
err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
print("max relative difference %.3g (tolerance %g)" % (err, tol))
sys.exit(0 if err <= tol else 1)
