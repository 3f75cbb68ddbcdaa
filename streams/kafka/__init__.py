"""Kafka: topic names (pure), record framing and Avro (pure), the schema registry and admin (I/O)."""
