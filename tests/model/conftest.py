"""The fast tier's world, shared by the tests of one module (the regressions, the invariants' own tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import TestServer
from tests.model.world import World, fast_steps


@pytest.fixture(scope="module")
def fast_world(tmp_path_factory: pytest.TempPathFactory, mongo_server: TestServer) -> Iterator[World]:
    made = World(tmp_path_factory.mktemp("model"), mongo_server.uri, local_server=mongo_server.local,
                 real_ops=False)
    with fast_steps():
        yield made
    made.close()
