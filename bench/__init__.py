"""Benchmark harness: nmr against Verdaccio (and an nginx static-file floor) on one machine.

``python -m bench.run`` (``make bench``) does everything end to end; ``python -m bench.drive``
measures any one registry given its URL and a bearer token. Nothing here is a test: timings are
reported, never asserted.
"""
