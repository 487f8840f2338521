from tests.dashboard.correlation.conftest import db  # noqa: F401 - the empty-database fixture
