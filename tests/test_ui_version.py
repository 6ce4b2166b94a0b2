"""Every page names Assay's version, and its asset URLs carry it (so a new release is fetched
anew), even on pages whose own context has a `version` of something else (a dataset's)."""

from __future__ import annotations

import httpx

from assay import __version__


def test_dataset_pages_show_the_assay_version_not_the_dataset_version(
    client: httpx.Client,
) -> None:
    assert client.post("/api/v1/projects/shop/datasets", json={"name": "qa"}).status_code == 201
    created = client.post(
        "/api/v1/projects/shop/datasets/qa/changes",
        json={"insert": [{"record_id": "r1", "input": "q", "expected": "a"}]},
    )
    assert created.status_code in (200, 201), created.text
    page = client.get("/p/shop/datasets/qa")
    assert page.status_code == 200
    assert f"Assay {__version__} ·" in page.text
    assert f"datasets.css?v={__version__}" in page.text
    assert "Assay 1 ·" not in page.text
