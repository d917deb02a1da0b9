"""The `waymark` command: the one thin place that knows every package."""

import os as _os

# OpenMP worker threads (LightGBM's through libgomp, scikit-learn's) sleep while they wait instead of
# spinning. Beside another job on the same two cores, a spinning wait cost LightGBM five times the CPU
# and wall time for the same trees (#19). Set here, before any OpenMP runtime loads and reads it;
# a policy already in the environment wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
