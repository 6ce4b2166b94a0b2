"""The public API: everything in `assay.__all__` is there, and an application that only traces
does not load the model layer or the scorers at import."""

from __future__ import annotations

import subprocess
import sys

import assay


def test_every_public_name_resolves() -> None:
    for name in assay.__all__:
        assert getattr(assay, name) is not None, name
    from assay import judge, models, scorers

    assert judge is scorers.judge and models.get_model is assay.models.get_model


def test_importing_assay_leaves_models_and_scorers_unloaded() -> None:
    code = (
        "import sys, assay\n"
        "print(sorted(m for m in ('assay.models', 'assay.scorers') if m in sys.modules))\n"
        "assay.judge\n"
        "print(sorted(m for m in ('assay.models', 'assay.scorers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "['assay.models', 'assay.scorers']"]
