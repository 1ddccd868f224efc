"""The locustfile, kept beside the benchmarks for `locust -f loadtests/locustfile.py`.

The user class lives in the package (seaway/locustfile.py) so `seaway loadtest`
works from an installed Seaway too.
"""

from seaway.locustfile import ModelUser

__all__ = ["ModelUser"]
