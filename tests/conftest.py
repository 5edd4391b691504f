"""Suite-wide settings: every program the tests compile is verified (SYMRNN_DEBUG=1 runs the
graph verifier after each pass and the memory verifier on each plan), and compiled kernels
go to a cache directory of their own (not the user's), shared by test runs."""
import os
import tempfile

os.environ.setdefault("SYMRNN_DEBUG", "1")
os.environ.setdefault("SYMRNN_CACHE_DIR", os.path.join(tempfile.gettempdir(), "symrnn-test-cache"))
