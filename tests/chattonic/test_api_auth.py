import pytest
from rest_framework.test import APIClient

from chattonic.tenancy.models import ApiKey
from chattonic.tenancy.services import api_key_create, api_key_revoke
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def error_code(response):
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]["code"]


def test_a_valid_key_reads_its_own_tenant(tenant):
    api = api_client_for(api_key_create(tenant=tenant, name="k", scopes=["read"]))
    response = api.get("/api/v1/tenant/")
    assert response.status_code == 200
    assert response.json() == {
        "id": tenant.pk,
        "name": tenant.name,
        "slug": tenant.slug,
        "created_at": response.json()["created_at"],
    }


def test_the_secret_is_stored_hashed_and_use_is_recorded(tenant):
    api_key, secret = api_key_create(tenant=tenant, name="k", scopes=["read"])
    assert secret.startswith(f"ct_{api_key.prefix}_")
    assert secret.split("_", 2)[2] not in api_key.secret_hash
    assert api_key.last_used_at is None
    api_client_for((api_key, secret)).get("/api/v1/tenant/")
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.parametrize(
    "header,code",
    [
        (None, "not_authenticated"),
        ("Token abc", "malformed_credentials"),
        ("Bearer", "malformed_credentials"),
        ("Bearer a b", "malformed_credentials"),
        ("Bearer ct_nope_nope", "invalid_api_key"),
        ("Bearer garbage", "invalid_api_key"),
    ],
)
def test_missing_malformed_and_unknown_keys_get_401(tenant, header, code):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/tenant/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert error_code(response) == code


def test_a_wrong_secret_for_a_real_prefix_gets_401(tenant):
    api_key, _ = api_key_create(tenant=tenant, name="k", scopes=["read"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer ct_{api_key.prefix}_wrongsecret")
    response = client.get("/api/v1/tenant/")
    assert response.status_code == 401
    assert error_code(response) == "invalid_api_key"


def test_a_revoked_key_gets_401(tenant):
    api_key, secret = api_key_create(tenant=tenant, name="k", scopes=["read"])
    api_key_revoke(api_key=api_key)
    response = api_client_for((api_key, secret)).get("/api/v1/tenant/")
    assert response.status_code == 401
    assert error_code(response) == "revoked_api_key"


def test_scopes_imply_each_other():
    key = ApiKey(scopes=["write"])
    assert key.has_scope("read") and key.has_scope("write") and not key.has_scope("admin")
    assert ApiKey(scopes=["admin"]).has_scope("read")
    assert not ApiKey(scopes=["read"]).has_scope("write")


def test_the_throttle_answers_429_with_retry_after(tenant, settings):
    settings.API_RATE_PER_MINUTE = 3
    api = api_client_for(api_key_create(tenant=tenant, name="k", scopes=["read"]))
    assert [api.get("/api/v1/tenant/").status_code for _ in range(3)] == [200, 200, 200]
    response = api.get("/api/v1/tenant/")
    assert response.status_code == 429
    assert error_code(response) == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    # Another key of the same tenant has its own budget.
    other = api_client_for(api_key_create(tenant=tenant, name="k2", scopes=["read"]))
    assert other.get("/api/v1/tenant/").status_code == 200


def test_unknown_api_paths_get_a_json_404(api):
    response = api.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_the_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    document = schema.json()
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    tenant_get = document["paths"]["/api/v1/tenant/"]["get"]
    assert {"200", "401", "403", "429"} <= set(tenant_get["responses"])
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()
