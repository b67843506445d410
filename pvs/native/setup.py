"""Builds squirrel_ca_helper.c into a shared library installed beside the Python packages.

It is a plain C library, not an importable module (no Python.h, no PyInit): pvs.epics_bulk
finds the file with importlib and loads it with ctypes. `pip install -r requirements.txt`
builds it (a C compiler is needed: `apt-get install gcc`).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "squirrel_ca_helper", ["squirrel_ca_helper.c"], extra_compile_args=["-O2", "-Wall"], libraries=["pthread"]
        )
    ],
    py_modules=[],
)
