"""scimatch: hybrid search and matching for the Digital Science Portal."""

import os

# torch and faiss each bring an OpenMP runtime; with busy-waiting threads they starve each other on
# a small machine (a query encode went from ~10 ms to hundreds). Passive waiting costs nothing here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
