"""One local cloud for the generated clients' runs: the e2e suite's own fixture."""

from tests.e2e.conftest import local_service

__all__ = ["local_service"]
