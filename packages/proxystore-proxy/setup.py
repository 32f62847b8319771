"""Build the optional C forwarding engine of `proxystore.proxy`.

The extension is optional: without a compiler the install still succeeds and
`Proxy` falls back to the pure-Python engine (same behaviour, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "proxystore.proxy._cproxy",
            sources=["src/proxystore/proxy/_cproxy.c"],
            optional=True,
        ),
    ],
)
