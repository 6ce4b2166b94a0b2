"""Wrappers that trace a provider client's model calls: ``assay.wrap_openai(client)``,
``assay.wrap_anthropic(client)``. The provider libraries are imported only by the application."""

from assay.sdk.wrappers._anthropic import wrap_anthropic
from assay.sdk.wrappers._openai import wrap_openai

__all__ = ["wrap_anthropic", "wrap_openai"]
