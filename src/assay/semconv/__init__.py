"""What spans say, read the same by ingest (server side) and by scorers and the model layer
(client side): the attribute vocabulary (`assay.semconv.attributes`) and the model price table
(`assay.semconv.prices`). Imports nothing beyond the base install."""
