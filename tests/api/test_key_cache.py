"""The API key cache (api/auth.py): a checked key is trusted for `KEY_CACHE_SECONDS`
without reading the database, yet revocation still takes effect: at once through this
process's admin API, within the bound when done elsewhere."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from arrears.api import auth
from arrears.domain.clock import TestClock
from arrears.services.sellers import revoke_key
from arrears.store.database import Database
from tests.factories import ADMIN, new_seller
from tests.ingest_factories import MeteredSeller, new_metered_seller, send, usage


class _Elapsed:
    """Stands in for the cache's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds


@pytest.fixture
def elapsed(monkeypatch: pytest.MonkeyPatch) -> _Elapsed:
    clock = _Elapsed()
    monkeypatch.setattr(auth, "_monotonic", clock)
    return clock


def _profile_status(client: TestClient, seller_id: str, headers: dict[str, str]) -> int:
    return client.get(f"/api/sellers/{seller_id}", headers=headers).status_code


def test_a_cached_key_revoked_through_the_admin_api_is_refused_at_once(
    client: TestClient, elapsed: _Elapsed
) -> None:
    seller = new_seller(client)
    assert _profile_status(client, seller.seller_id, seller.headers) == 200  # now cached

    revoked = client.delete(
        f"/admin/sellers/{seller.seller_id}/keys/{seller.key_id}", headers=ADMIN
    )
    assert revoked.status_code == 204
    assert _profile_status(client, seller.seller_id, seller.headers) == 401


def test_a_key_revoked_by_another_process_is_refused_once_the_cache_bound_has_passed(
    client: TestClient, database: Database, clock: TestClock, elapsed: _Elapsed
) -> None:
    seller = new_seller(client)
    assert _profile_status(client, seller.seller_id, seller.headers) == 200  # now cached
    # As `arrears keys revoke` or another server process would: not through this app.
    with database.registry_work() as work:
        revoke_key(work, clock, seller.seller_id, seller.key_id)

    elapsed.seconds += auth.KEY_CACHE_SECONDS - 0.5
    assert _profile_status(client, seller.seller_id, seller.headers) == 200
    elapsed.seconds += 0.5
    assert _profile_status(client, seller.seller_id, seller.headers) == 401


def test_a_wrong_secret_for_a_cached_key_id_is_refused(
    client: TestClient, elapsed: _Elapsed
) -> None:
    seller = new_seller(client)
    assert _profile_status(client, seller.seller_id, seller.headers) == 200  # now cached
    wrong = seller.api_key[:-4] + ("0000" if not seller.api_key.endswith("0000") else "1111")

    headers = {"Authorization": f"Bearer {wrong}"}
    assert _profile_status(client, seller.seller_id, headers) == 401


def test_revoking_one_key_leaves_the_sellers_other_keys_working(
    client: TestClient, elapsed: _Elapsed
) -> None:
    seller = new_seller(client)
    second = client.post(f"/admin/sellers/{seller.seller_id}/keys", headers=ADMIN).json()
    second_headers = {"Authorization": f"Bearer {second['apiKey']}"}
    assert _profile_status(client, seller.seller_id, second_headers) == 200  # now cached

    client.delete(f"/admin/sellers/{seller.seller_id}/keys/{seller.key_id}", headers=ADMIN)

    assert _profile_status(client, seller.seller_id, second_headers) == 200
    assert _profile_status(client, seller.seller_id, seller.headers) == 401


def _usage_post_status(client: TestClient, metered: MeteredSeller, key: str) -> int:
    payload = usage(metered.component_id, 1, Key=key)
    return send(client, "POST", metered.usage_path(), metered, payload).status_code


def test_a_usage_post_with_a_key_revoked_through_the_admin_api_is_refused_at_once(
    client: TestClient, elapsed: _Elapsed
) -> None:
    metered = new_metered_seller(client)
    seller = metered.seller
    assert _usage_post_status(client, metered, "first") == 201  # now cached

    revoked = client.delete(
        f"/admin/sellers/{seller.seller_id}/keys/{seller.key_id}", headers=ADMIN
    )
    assert revoked.status_code == 204
    assert _usage_post_status(client, metered, "second") == 401


def test_a_usage_post_with_a_key_revoked_elsewhere_is_refused_once_the_bound_has_passed(
    client: TestClient, database: Database, clock: TestClock, elapsed: _Elapsed
) -> None:
    metered = new_metered_seller(client)
    seller = metered.seller
    assert _usage_post_status(client, metered, "first") == 201  # now cached
    with database.registry_work() as work:
        revoke_key(work, clock, seller.seller_id, seller.key_id)

    elapsed.seconds += auth.KEY_CACHE_SECONDS - 0.5
    assert _usage_post_status(client, metered, "within") == 201
    elapsed.seconds += 0.5
    assert _usage_post_status(client, metered, "after") == 401
