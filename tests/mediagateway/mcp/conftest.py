from tests.mediagateway.frontends import cli_log  # noqa: F401 - the fixture, for this package's tests
