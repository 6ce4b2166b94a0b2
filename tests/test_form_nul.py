"""A NUL in a web form field is refused with 400 naming the field, before any route reads it:
PostgreSQL text cannot hold NUL (it answered 500), and no name or value of the UI needs one."""

from __future__ import annotations

import html

import httpx
import pytest

from tests.conftest import LiveServer

TOKEN = "t" * 43  # the open mode's double-submit token: the cookie and the form's field
COOKIES = {"assay_csrf": TOKEN}


def _post(
    live: LiveServer, path: str, form: dict[str, str], *, multipart: bool = False
) -> httpx.Response:
    with live.client(cookies=COOKIES) as client:
        fields = {**form, "csrf_token": TOKEN}
        if multipart:
            files = {name: (None, value) for name, value in fields.items()}
            return client.post(path, files=files)
        return client.post(path, data=fields)


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
def test_a_nul_in_a_form_field_is_refused_naming_the_field(
    live: LiveServer, multipart: bool
) -> None:
    made = _post(live, "/p/demo/datasets", {"name": "ok", "description": "x"}, multipart=multipart)
    assert made.status_code == 303, made.text
    refused = _post(
        live, "/p/demo/datasets", {"name": "bad\0name", "description": "x"}, multipart=multipart
    )
    assert refused.status_code == 400, refused.text
    assert "'name' contains a NUL character" in html.unescape(refused.text)
    assert "text/html" in refused.headers["content-type"]  # the UI's error page
    with live.client() as client:
        names = [d["name"] for d in client.get("/api/v1/projects/demo/datasets").json()["items"]]
    assert names == ["ok"]


def test_a_nul_in_a_field_name_or_any_form_of_the_ui_is_refused(live: LiveServer) -> None:
    with live.client(cookies=COOKIES) as client:
        encoded = f"csrf_token={TOKEN}&na%00me=x&description=y"
        refused = client.post(
            "/p/demo/datasets",
            content=encoded,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert refused.status_code == 400 and "'na\\x00me'" in html.unescape(refused.text)
    signed = _post(live, "/login", {"name": "a\0b", "password": "x"})
    assert signed.status_code == 400 and "'name'" in html.unescape(signed.text)
    edited = _post(live, "/p/demo/datasets/golden/records", {"input": "a\0b", "metadata": "{}"})
    assert edited.status_code == 400 and "'input'" in html.unescape(edited.text)
