"""Build the optional C read path of the shared-memory arena.

The extension is optional: without a compiler the install still succeeds and the
arena uses its pure-Python read path (same protocol and behaviour, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "proxystore.connectors._arenac",
            sources=["src/proxystore/connectors/_arenac.c"],
            optional=True,
        ),
    ],
)
