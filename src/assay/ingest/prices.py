"""Old home of `assay.semconv.prices`; kept until the server imports the neutral module."""

from assay.semconv.prices import (
    DEFAULT_PRICES,
    PRICES_AS_OF,
    ModelPrice,
    PriceTable,
    parse_overrides,
)

__all__ = ["DEFAULT_PRICES", "PRICES_AS_OF", "ModelPrice", "PriceTable", "parse_overrides"]
