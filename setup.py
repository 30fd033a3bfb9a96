"""Build script for the one C extension (everything else is declared in setup.cfg).

``pipeline.compressed._kernels`` fuses the per-pixel work of the extract_mv stage; it needs only a C compiler
and the Python headers (no numpy headers). ``pip install -e .`` builds it in place. It is optional: without
a compiler the install still succeeds and extract_mv runs the OpenCV functions that define the same arrays
(identical output, about 1.8x the CPU time; the stage logs a warning, and the test suite fails on purpose).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("pipeline.compressed._kernels", ["pipeline/compressed/_kernels.c"],
                             extra_compile_args=["-O3"], optional=True)])
