"""The model layer: chat completions (with tools and structured output) and embeddings from
OpenAI, Anthropic, any OpenAI-compatible server, or an offline mock, behind one interface.

    model = assay.models.get_model("openai/gpt-4.1-mini", temperature=0)
    answer = model.generate("Name the capital of France.")
    vectors = assay.models.get_model("openai/text-embedding-3-small").embed(["a", "b"])

Every call has a time-out, retries with back-off on rate limits and server errors (honouring
Retry-After), a cap on calls in flight per provider endpoint, tokens and cost on its
`Usage`, and an ``llm`` span. Calls at temperature 0 are cached on disk by request hash
(ASSAY_CACHE_DIR, ASSAY_MODEL_CACHE), so a re-run is reproducible and free.
"""

from assay.models._cache import ResponseCache, default_cache_dir
from assay.models._mock import MockProvider
from assay.models._model import Model, Provider
from assay.models._registry import get_model, register_provider
from assay.models._retry import RetryPolicy
from assay.models._types import Message, ModelError, Request, Response, Tool, ToolCall, Usage

__all__ = [
    "Message",
    "MockProvider",
    "Model",
    "ModelError",
    "Provider",
    "Request",
    "Response",
    "ResponseCache",
    "RetryPolicy",
    "Tool",
    "ToolCall",
    "Usage",
    "default_cache_dir",
    "get_model",
    "register_provider",
]
