"""The LINE adapter's client: how it sets up the SDK."""

from __future__ import annotations

from toolkit.line.client import LineClient


def test_a_client_keeps_as_many_connections_as_its_caller_sends_on() -> None:
    default = LineClient(api_base="http://127.0.0.1:9/sandbox/line", access_token="t")
    wide = LineClient(api_base="http://127.0.0.1:9", access_token="t", pool_size=32)
    try:
        assert wide._api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] == 32
        assert default._api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] != 32
        assert default._api_client.configuration.host == "http://127.0.0.1:9/sandbox/line"  # prefix kept
    finally:
        default.close()
        wide.close()
